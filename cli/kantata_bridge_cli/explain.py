"""`kantata-bridge explain`: what the worker would do with a delivery, and what it did, writing nothing.

Two ways in:

- a raw delivery: ``--tracker github --header 'X-GitHub-Event: issues' --body events/payloads/x.json``
  → the parsed event, the route, the status report the worker would POST, and (when a state table is given)
  the recorded outcome of that delivery and the object's ordering-guard version;
- a delivery id: ``--tracker github --delivery-id <id> [--hook-id <id>]`` → the recorded outcome (from the
  state table), the object's recent outcomes, and for a parked delivery its envelope replayed as above.

The routing config comes from ``--config`` or the worker's ROUTING_CONFIG_FILE / ROUTING_CONFIG_PARAMETER; a raw
delivery needs one, a delivery id only to replay a parked envelope. The state table is read with the AWS
connection of ``--endpoint-url`` / ``--region`` / ``--profile`` (as for ``redrive``).
Output is one JSON document on stdout. Exit codes: 0 shown, 1 nothing recorded for the delivery id,
2 bad input (unreadable file, malformed header, no or invalid routing config, AWS settings, an unreachable
endpoint, a missing table).
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
from typing import Any, Final

from kantata_bridge.envelope import DeliveryEnvelope, dedupe_key
from kantata_bridge.kantata import DEFAULT_BASE_URL

from kantata_bridge_cli import aws, console
from kantata_bridge_cli.kantata_options import shown_url, url_problem

TOOL: Final = "kantata-bridge"
EXAMPLES: Final = """\
examples:
  # a raw delivery: the event, the route and the status report the worker would post
  kantata-bridge explain --config config/routing.example.yaml --tracker github \\
      --header 'X-GitHub-Event: issues' --body events/payloads/github_issues_opened.json
  # a recorded delivery of a deployed stack: its outcome, the object's history, a parked one replayed
  kantata-bridge explain --state-table <StateTableName> --region eu-west-1 \\
      --config routing.yaml --tracker jira --delivery-id <X-Atlassian-Webhook-Identifier>
  # the local stack (kantata-bridge serve prints this line with its own endpoint and table)
  kantata-bridge explain --endpoint-url http://127.0.0.1:PORT --region us-east-1 \\
      --state-table kantata-bridge-local-state --config config/local-routing.yaml \\
      --tracker github --delivery-id <X-GitHub-Delivery>

exit codes: 0 shown, 1 nothing recorded for the delivery id, 2 bad input (files, header, routing config,
AWS settings, an unreachable endpoint, a missing table)
"""
NO_CONFIG_HINT: Final = (
    "Pass --config FILE (e.g. --config config/routing.example.yaml) "
    "or set ROUTING_CONFIG_FILE / ROUTING_CONFIG_PARAMETER."
)


class ExplainInputError(console.CliError, ValueError):
    """Bad command-line input (the message says which); exit code 2."""


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
    parser.add_argument("--delivery-id", help="explain a recorded delivery instead (reads the state table)")
    parser.add_argument("--hook-id", help="the delivery's hook id (GitHub X-GitHub-Hook-ID), if it had one")
    parser.add_argument(
        "--config",
        type=Path,
        help="routing config file (default: $ROUTING_CONFIG_FILE, else the SSM parameter "
        "$ROUTING_CONFIG_PARAMETER)",
    )
    parser.add_argument(
        "--today", type=_iso_date, help="date for due-date rules, YYYY-MM-DD (default: today, UTC)"
    )
    where = parser.add_argument_group(
        "AWS (for --delivery-id, or to add the recorded outcome of a raw delivery)"
    )
    where.add_argument("--state-table", help="state table to read outcomes from (default: $STATE_TABLE)")
    aws.add_arguments(where)
    kantata = parser.add_argument_group(
        "Kantata (optional: read the linked task and its workspace's statuses for a route with tasks on; GETs only)"
    )
    kantata.add_argument(
        "--kantata-token-env",
        metavar="VAR",
        help="environment variable holding a Kantata token; without it Kantata is not contacted",
    )
    kantata.add_argument(
        "--kantata-base-url",
        default=os.environ.get("KANTATA_BASE_URL") or DEFAULT_BASE_URL,
        help="Kantata API base URL (default: $KANTATA_BASE_URL or the public API)",
    )


def _kantata(args: argparse.Namespace) -> Any:
    """A Kantata client for read-only lookups, or None when no --kantata-token-env was given."""
    name = getattr(args, "kantata_token_env", None)
    if not name:
        return None
    token = os.environ.get(name, "").strip()
    if not token:
        raise ExplainInputError(
            f"--kantata-token-env {name}: that environment variable is empty or not set",
            hint=f"export {name}=<token> (or leave the option out to explain without reading Kantata)",
        )
    from kantata_bridge.kantata.client import KantataClient
    from kantata_bridge.kantata.errors import KantataValueError

    problem = url_problem(args.kantata_base_url, "--kantata-base-url")
    if problem:
        raise ExplainInputError(problem)
    try:
        client = KantataClient(token, args.kantata_base_url)
    except KantataValueError as exc:  # the token's characters (never its value)
        raise ExplainInputError(f"--kantata-token-env {name}: {exc}") from None
    print(f"{TOOL}: Kantata: {shown_url(args.kantata_base_url)} (reading only)", file=sys.stderr)
    return client


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date like 2026-11-25: {text!r}") from None


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


def explain_envelope(
    envelope: DeliveryEnvelope, config: Any, today: dt.date, kantata: Any = None
) -> dict[str, Any]:
    """Parse, route and map: the event, the route, the report body (or why there is none) and what task sync
    would do. Writes nothing; reads Kantata (GETs) only when ``kantata`` (a client) is given."""
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
    if route is None and kantata is not None and config.links.enabled:
        # No route in the document: a workspace linked to the source in Kantata (read-only lookup)
        from kantata_bridge.mapping.links import WorkspaceLinks
        from kantata_bridge.worker.processor import resolve_route

        try:
            route = resolve_route(event, config, WorkspaceLinks(lambda: kantata))
        except KantataError as exc:
            raise console.CliError(
                f"looking up the workspaces linked in Kantata failed: {exc}", exit_code=console.EXIT_FAILED
            ) from None
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
    if route.tasks.mode != "off":
        from kantata_bridge.worker.tasks import preview

        try:
            out["task"] = preview(kantata, event, route)
        except KantataError as exc:
            raise console.CliError(
                f"reading the linked task from Kantata failed: {exc}",
                hint="Check --kantata-base-url and the token, or leave out --kantata-token-env.",
                exit_code=console.EXIT_FAILED,
            ) from None
    out["verdict"] = "would post the report above, unless the ordering guard holds a newer version"
    return out


def run(args: argparse.Namespace) -> int:
    """Print the explanation as JSON. Raises CliError (exit 2) for bad input or an AWS failure."""
    reader = _StateReader(args)
    with console.human_logging(TOOL):  # stdout holds the JSON document and nothing else
        doc = _explain(args, reader)
    print(json.dumps(doc, indent=2, default=_json_value, ensure_ascii=False))
    if args.delivery_id and doc.get("outcome") is None:
        console.error(
            TOOL,
            f"nothing is recorded for delivery {doc['delivery']['dedupe_key']} in {reader.table}",
            "Check --tracker, --delivery-id and --hook-id (GitHub deliveries usually have one).",
        )
        return console.EXIT_FAILED
    return console.EXIT_OK


class _StateReader:
    """The state table and the AWS connection, built on first use; every AWS failure becomes a CliError."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.table: str | None = args.state_table or os.environ.get("STATE_TABLE") or None
        self._session: Any = None
        self._dynamodb: Any = None

    def session(self) -> Any:
        if self._session is None:
            self._session = aws.session(self.args)
        return self._session

    def dynamodb(self) -> Any:
        if self._dynamodb is None:
            self._dynamodb = aws.client(self.session(), "dynamodb", self.args)
        return self._dynamodb

    def call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, with an AWS failure turned into one line about ``what``."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            region = self._session.region_name if self._session is not None else None
            raise aws.describe(exc, self.args, what=what, region=region) from None

    def store(self) -> Any:
        from kantata_bridge.worker.outcomes import OutcomeStore

        assert self.table is not None
        return OutcomeStore(self.table, self.call("the AWS connection", self.dynamodb))

    def parameter(self, name: str) -> str:
        """An SSM parameter's value (decrypted)."""
        ssm = self.call("the AWS connection", aws.client, self.session(), "ssm", self.args)
        answer = self.call(f"SSM parameter {name!r}", ssm.get_parameter, Name=name, WithDecryption=True)
        return str(answer["Parameter"]["Value"])


def _explain(args: argparse.Namespace, reader: _StateReader) -> dict[str, Any]:
    today = args.today or dt.datetime.now(dt.UTC).date()
    if args.delivery_id:
        return _explain_recorded(args, reader, today)
    if args.body is None:
        raise ExplainInputError(
            "give --body FILE (with --header lines) or --delivery-id",
            hint=f"Try '{TOOL} explain --help' for examples.",
        )
    try:
        body = args.body.read_bytes()
    except OSError as exc:
        raise ExplainInputError(f"cannot read {args.body}: {exc.strerror}") from None
    envelope = build_envelope(args.tracker, _headers(args.header), body)
    config = _load_config(args.config, reader)
    if config is None:
        raise ExplainInputError(
            "explain needs a routing config to show the route and report", hint=NO_CONFIG_HINT
        )
    doc = explain_envelope(envelope, config, today, _kantata(args))
    if reader.table:
        doc.update(_recorded(reader, envelope.dedupe_key, doc.get("event", {}).get("object_key")))
    return doc


def _explain_recorded(args: argparse.Namespace, reader: _StateReader, today: dt.date) -> dict[str, Any]:
    if not reader.table:
        raise ExplainInputError(
            "--delivery-id needs the state table",
            hint="Pass --state-table NAME (the stack's StateTableName output) or set STATE_TABLE.",
        )
    key = dedupe_key(args.tracker, args.hook_id, args.delivery_id)
    doc: dict[str, Any] = {"delivery": {"dedupe_key": key}}
    store = reader.store()
    what = f"state table {reader.table!r}"
    outcome = reader.call(what, store.get, key)
    doc["outcome"] = outcome.log_fields() if outcome else None
    if outcome is None:
        return doc
    if outcome.envelope:
        envelope = DeliveryEnvelope.from_message(outcome.envelope)
        if envelope.body is not None:
            config = _load_config(args.config, reader)
            doc["replay"] = explain_envelope(envelope, config, today, _kantata(args))
    if outcome.object_key:
        history = reader.call(what, store.for_object, outcome.object_key, limit=20)
        doc["object_history"] = [o.log_fields() for o in history]
    return doc


def _recorded(reader: _StateReader, dedupe_key: str, object_key: str | None) -> dict[str, Any]:
    from kantata_bridge.worker.ordering import OrderingGuard, version_text

    what = f"state table {reader.table!r}"
    outcome = reader.call(what, reader.store().get, dedupe_key)
    doc: dict[str, Any] = {"outcome": outcome.log_fields() if outcome else None}
    if object_key:
        guard = OrderingGuard(str(reader.table), reader.dynamodb())
        current = reader.call(what, guard.current, object_key)
        doc["ordering_guard"] = (
            {"version": version_text(current[0]), "delivery": current[1]} if current else None
        )
    return doc


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


def _load_config(path: Path | None, reader: _StateReader) -> Any:
    """The routing config from ``path``, else $ROUTING_CONFIG_FILE, else the SSM parameter
    $ROUTING_CONFIG_PARAMETER (as the worker reads it: the file wins); None when none is given.
    Raises ExplainInputError when it cannot be read or is invalid (naming every bad key)."""
    from kantata_bridge.mapping.config import ConfigError, parse_config

    if path is None and os.environ.get("ROUTING_CONFIG_FILE"):
        path = Path(os.environ["ROUTING_CONFIG_FILE"])
    try:
        if path is not None:
            try:
                return parse_config(path.read_text(encoding="utf-8"), str(path))
            except OSError as exc:
                raise ExplainInputError(f"cannot read {path}: {exc.strerror}") from None
            except UnicodeDecodeError as exc:
                raise ExplainInputError(f"{path} is not UTF-8 text (byte {exc.start})") from None
        parameter = os.environ.get("ROUTING_CONFIG_PARAMETER")
        if parameter:
            return parse_config(reader.parameter(parameter), f"ssm:{parameter}")
    except ConfigError as exc:
        raise ExplainInputError(str(exc)) from None
    return None
