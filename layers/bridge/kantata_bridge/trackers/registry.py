"""Which trackers the bridge knows, by the name in the URL path (``/webhooks/{tracker}``).

A tracker is two modules: its adapter (delivery conventions, used by the receiver) and its event parser
(payload → TrackerEvent, used by the worker). Both are imported on first use of that tracker, never with this
module: adding a tracker must not add an import to every cold start, and a receiver that serves GitHub never
loads Jira's code. Adapters are stateless, so one instance each is shared.

A new tracker joins by adding one line to ``_TRACKERS``; nothing in the receiver or worker flow changes.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol

if TYPE_CHECKING:
    from kantata_bridge.tracker_event import TrackerEvent
    from kantata_bridge.trackers.base import Headers, TrackerAdapter


class EventParser(Protocol):
    """What each tracker's event module offers as ``parse_event``.

    Raises IgnoredEventError (a valid delivery the bridge does not report) or UnmappablePayloadError (the
    payload lacks or mistypes a field the bridge needs; the message names it).
    """

    def __call__(
        self, event_type: str, body: bytes, content_type: str | None, headers: Headers
    ) -> TrackerEvent: ...


class _Tracker(NamedTuple):
    adapter: str  # "module:Class"
    events: str  # module with parse_event


_TRACKERS: Final[Mapping[str, _Tracker]] = {
    "github": _Tracker(
        "kantata_bridge.trackers.github:GitHubAdapter", "kantata_bridge.trackers.github_events"
    ),
    "jira": _Tracker("kantata_bridge.trackers.jira:JiraAdapter", "kantata_bridge.trackers.jira_events"),
    "gitlab": _Tracker(
        "kantata_bridge.trackers.gitlab:GitLabAdapter", "kantata_bridge.trackers.gitlab_events"
    ),
    "linear": _Tracker(
        "kantata_bridge.trackers.linear:LinearAdapter", "kantata_bridge.trackers.linear_events"
    ),
}

TRACKERS: Final = tuple(_TRACKERS)
"""Every tracker name the bridge knows, in a stable order."""

_adapters: dict[str, TrackerAdapter] = {}


def find_adapter(name: str) -> TrackerAdapter | None:
    """The adapter for a tracker name (imported on first use), or None when the bridge does not know it."""
    adapter = _adapters.get(name)
    if adapter is None:
        entry = _TRACKERS.get(name)
        if entry is None:
            return None
        module_name, _, class_name = entry.adapter.partition(":")
        adapter = getattr(importlib.import_module(module_name), class_name)()
        _adapters[name] = adapter
    return adapter


def find_event_parser(name: str) -> EventParser | None:
    """The tracker's ``parse_event`` (imported on first use), or None when the bridge does not know it."""
    entry = _TRACKERS.get(name)
    if entry is None:
        return None
    parser: EventParser = importlib.import_module(entry.events).parse_event
    return parser


class _Adapters(Mapping[str, "TrackerAdapter"]):
    """Every known adapter as a read-only mapping that imports an adapter only when it is looked up."""

    def __getitem__(self, name: str) -> TrackerAdapter:
        adapter = find_adapter(name)
        if adapter is None:
            raise KeyError(name)
        return adapter

    def __iter__(self) -> Iterator[str]:
        return iter(_TRACKERS)

    def __len__(self) -> int:
        return len(_TRACKERS)

    def __contains__(self, name: object) -> bool:
        return name in _TRACKERS


ADAPTERS: Final[Mapping[str, TrackerAdapter]] = _Adapters()
