"""Which trackers the bridge knows, by the name in the URL path (``/webhooks/{tracker}``).

GitLab and Linear join by adding an adapter here. Adapters are stateless, so one instance each is shared.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from kantata_bridge.trackers.base import TrackerAdapter
from kantata_bridge.trackers.github import GitHubAdapter
from kantata_bridge.trackers.jira import JiraAdapter

ADAPTERS: Final[Mapping[str, TrackerAdapter]] = MappingProxyType(
    {"github": GitHubAdapter(), "jira": JiraAdapter()}
)


def find_adapter(name: str) -> TrackerAdapter | None:
    """The adapter for a tracker name, or None when the bridge does not know it."""
    return ADAPTERS.get(name)
