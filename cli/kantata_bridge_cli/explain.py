"""`kantata-bridge explain`: what the worker would do with a delivery, and what it did, writing nothing.

Two ways in:

- a raw delivery: ``--tracker github --header 'X-GitHub-Event: issues' --body events/payloads/x.json``
  → the parsed event, the route, the status report the worker would POST, and (when STATE_TABLE is set) the
  recorded outcome of that delivery and the object's ordering-guard version;
- a delivery id: ``--tracker github --delivery-id <id> [--hook-id <id>]`` → the recorded outcome (from
  STATE_TABLE), the object's recent outcomes, and for a parked delivery its envelope replayed as above.

The routing config comes from ``--config`` or the worker's ROUTING_CONFIG_FILE / ROUTING_CONFIG_PARAMETER.
Output is one JSON document on stdout. Exit codes: 0 shown, 1 nothing recorded for the delivery id,
2 bad input (unreadable file, malformed header, invalid config).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kantata_bridge.envelope import DeliveryEnvelope, dedupe_key


class ExplainInputError(ValueError):
    """Bad command-line input (the message says which)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from kantata_bridge.trackers.registry import TRACKERS

    parser.add_argument("--tracker", required=True, help=f"tracker name: {', '.join(TRACKERS)}")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'Name: value'",
        help="a request header of the delivery (repeatable), e.g. 'X-GitHub-Event: issues'",
    )
    parser.add_argument("--body", type=Path, help="file holding the raw request body")
    parser.add_argument("--delivery-id", help="explain a recorded delivery instead (reads STATE_TABLE)")
    parser.add_argument("--hook-id", help="the delivery's hook id (GitHub X-GitHub-Hook-ID), if it had one")
    parser.add_argument("--config", type=Path, help="routing config file (default: the worker's settings)")
    parser.add_argument("--state-table", help="state table to read outcomes from (default: $STATE_TABLE)")
    parser.add_argument(
        "--today", type=dt.date.fromisoformat, help="date for due-date rules (default: today, UTC)"
    )


def build_envelope(
    tracker: str, headers: Mapping[str, str], body: bytes, *, received_at: str | None = None
) -> DeliveryEnvelope:
    """An envelope as the receiver would queue it (event type and delivery id read by the tracker's adapter).

    Raises ExplainInputError for an unknown tracker or a delivery the adapter cannot identify.
    """
    from kantata_bridge.trackers.base import MalformedDeliveryError
    from kantata_bridge.trackers.registry import find_adapter

    adapter = find_adapter(tracker)
    if adapter is None:
        raise ExplainInputError(f"unknown tracker {tracker!r}")
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        identity = adapter.identify(lowered, body)
    except MalformedDeliveryError as exc:
        raise ExplainInputError(f"delivery cannot be identified: {exc}") from None
    return DeliveryEnvelope(
        tracker=tracker,
        event_type=identity.event_type,
        delivery_id=identity.delivery_id,
        hook_id=identity.hook_id,
        received_at=received_at or dt.datetime.now(dt.UTC).isoformat(),
        content_type=lowered.get("content-type"),
        headers=lowered,
        body=body,
    )


def explain_envelope(envelope: DeliveryEnvelope, config: Any, today: dt.date) -> dict[str, Any]:
    """Parse, route and map without I/O: the event, the route and the report body (or why there is none)."""
    from kantata_bridge.kantata.errors import KantataError
    from kantata_bridge.mapping.routing import route_event
    from kantata_bridge.mapping.rules import map_event
    from kantata_bridge.tracker_event import IgnoredEventError, UnmappablePayloadError
    from kantata_bridge.worker.processor import parse_delivery

    out: dict[str, Any] = {
        "delivery": {
            "tracker": envelope.tracker,
            "event_type": envelope.event_type,
            "delivery_id": envelope.delivery_id,
            "hook_id": envelope.hook_id,
            "dedupe_key": envelope.dedupe_key,
        }
    }
    try:
        event = parse_delivery(envelope)
    except IgnoredEventError as exc:
        out["verdict"] = f"skipped: ignored: {exc.reason}"
        return out
    except UnmappablePayloadError as exc:
        out["verdict"] = f"parked: unmappable payload: {exc}"
        return out
    out["event"] = {**asdict(event), "object_key": event.object_key}
    if config is None:
        out["verdict"] = "no routing config given (--config or ROUTING_CONFIG_FILE/ROUTING_CONFIG_PARAMETER)"
        return out
    route = route_event(event, config)
    if route is None:
        out["route"] = None
        out["verdict"] = f"skipped: unrouted: no route for {event.tracker} {event.project}"
        return out
    out["route"] = asdict(route)
    try:
        report = map_event(event, route, config.rules, dedupe_key=envelope.dedupe_key, today=today)
        out["report"] = {"status_report": report.to_body()}
    except KantataError as exc:
        out["verdict"] = f"parked: mapping: {exc}"
        return out
    out["verdict"] = "would post the report above, unless the ordering guard holds a newer version"
    return out


def run(args: argparse.Namespace) -> int:
    try:
        doc = _explain(args)
    except ExplainInputError as exc:
        print(f"explain: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(doc, indent=2, default=_json_value, ensure_ascii=False))
    return 1 if doc.get("outcome") is None and args.delivery_id else 0


def _explain(args: argparse.Namespace) -> dict[str, Any]:
    today = args.today or dt.datetime.now(dt.UTC).date()
    config = _load_config(args.config)
    table = args.state_table or os.environ.get("STATE_TABLE")
    if args.delivery_id:
        return _explain_recorded(args, table, config, today)
    if args.body is None:
        raise ExplainInputError("give --body FILE (with --header lines) or --delivery-id")
    try:
        body = args.body.read_bytes()
    except OSError as exc:
        raise ExplainInputError(f"cannot read {args.body}: {exc.strerror}") from None
    envelope = build_envelope(args.tracker, _headers(args.header), body)
    doc = explain_envelope(envelope, config, today)
    if table:
        doc.update(_recorded(table, envelope.dedupe_key, doc.get("event", {}).get("object_key")))
    return doc


def _explain_recorded(
    args: argparse.Namespace, table: str | None, config: Any, today: dt.date
) -> dict[str, Any]:
    if not table:
        raise ExplainInputError("--delivery-id needs --state-table or STATE_TABLE")
    key = dedupe_key(args.tracker, args.hook_id, args.delivery_id)
    doc: dict[str, Any] = {"delivery": {"dedupe_key": key}}
    store = _store(table)
    outcome = store.get(key)
    doc["outcome"] = outcome.log_fields() if outcome else None
    if outcome is None:
        return doc
    if outcome.envelope:
        envelope = DeliveryEnvelope.from_message(outcome.envelope)
        if envelope.body is not None:
            doc["replay"] = explain_envelope(envelope, config, today)
    if outcome.object_key:
        doc["object_history"] = [o.log_fields() for o in store.for_object(outcome.object_key, limit=20)]
    return doc


def _recorded(table: str, dedupe_key: str, object_key: str | None) -> dict[str, Any]:
    from kantata_bridge.worker.ordering import OrderingGuard, version_text
    from kantata_bridge.worker.runtime import dynamodb_client

    store = _store(table)
    outcome = store.get(dedupe_key)
    doc: dict[str, Any] = {"outcome": outcome.log_fields() if outcome else None}
    if object_key:
        current = OrderingGuard(table, dynamodb_client()).current(object_key)
        doc["ordering_guard"] = (
            {"version": version_text(current[0]), "delivery": current[1]} if current else None
        )
    return doc


def _store(table: str) -> Any:
    from kantata_bridge.worker.outcomes import OutcomeStore
    from kantata_bridge.worker.runtime import dynamodb_client

    return OutcomeStore(table, dynamodb_client())


def _json_value(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def _headers(lines: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ExplainInputError(f"--header must look like 'Name: value'; got {line!r}")
        out[name.strip().lower()] = value.strip()
    return out


def _load_config(path: Path | None) -> Any:
    from kantata_bridge.mapping.config import ConfigError, parse_config

    try:
        if path is not None:
            try:
                return parse_config(path.read_text(encoding="utf-8"), str(path))
            except OSError as exc:
                raise ExplainInputError(f"cannot read {path}: {exc.strerror}") from None
        if os.environ.get("ROUTING_CONFIG_FILE") or os.environ.get("ROUTING_CONFIG_PARAMETER"):
            from kantata_bridge.worker.runtime import ConfigSource
            from kantata_bridge.worker.settings import WorkerSettings

            settings = WorkerSettings(
                state_table="-",
                kantata_token_secret_name="-",  # noqa: S106 - a placeholder name, not a secret
                routing_config_file=os.environ.get("ROUTING_CONFIG_FILE") or None,
                routing_config_parameter=os.environ.get("ROUTING_CONFIG_PARAMETER") or None,
            )
            return ConfigSource(settings)()
    except ConfigError as exc:
        raise ExplainInputError(str(exc)) from None
    return None
