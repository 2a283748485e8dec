"""Checks shared by the tracker event adapters' tests (tests/unit/test_events_*.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kantata_bridge.tracker_event import IgnoredEventError, TrackerEvent, UnmappablePayloadError


def parse_or_error(parse_fn: Callable[[], TrackerEvent]) -> TrackerEvent | Exception:
    """The parsed event, or the documented error it raised (any other exception fails the test)."""
    try:
        return parse_fn()
    except (IgnoredEventError, UnmappablePayloadError) as exc:
        return exc


def assert_event_or_reason(result: Any) -> None:
    """A parse result is either an event with a ref and a web link, or an error that says why."""
    if isinstance(result, Exception):
        assert str(result)
    else:
        assert result.ref
        assert result.link.startswith("http")
