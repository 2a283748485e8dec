"""Routing by Kantata's own links: a workspace that carries an external reference to a tracker source.

A Kantata workspace (project) linked to a GitHub repository, a Jira project, a GitLab project or a Linear team
by an external reference (``subject_type`` Workspace, ``service_name`` the tracker, ``service_model`` from
``LINK_MODELS``, ``service_model_ref`` the source) receives that source's events when the routing document
has no route for them: routes in the document win, then these links (the worker decides; this module finds).

Pure parts: ``LINK_MODELS``, ``LinkTarget`` and the functions that parse, normalise and compare sources
(``link_target``, ``lookup_targets``, ``target_of``, ``source_url``). I/O: ``read_links`` (one
``GET /external_references`` with the filters, the workspaces side-loaded) and ``WorkspaceLinks``, the
worker's cache of ``workspaces_for(tracker, source)``, both over an injected client.

Sources are stored and looked up in one spelling per tracker, the one the routes' matchers compare in
(``mapping.routing.SOURCE_MATCHERS``): GitHub ``owner/repo`` and GitLab paths in lower case (both are
case-insensitive), Jira project keys and Linear team keys in upper case. ``kantata-bridge link add`` writes
that spelling; a reference written by another tool in another spelling is still recognised when read, but the
lookup filter asks Kantata for the normalised spelling only (docs/worker.md, "Links found in Kantata").

GitHub also has organisation links (``service_model`` ``organization``, ref ``acme``; ``link add github
acme/*``): every repository of the organisation that has no repository link of its own. A repository link
always wins over an organisation link, whatever the workspace ids.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from kantata_bridge.kantata.models import ExternalReference, Workspace

# Per tracker: the service_model of a workspace's link to one of its sources (TrackerEvent.project). The same
# words as the routing document's keys (mapping.config.ROUTE_SOURCES), so a link reads like a route.
LINK_MODELS: Final[Mapping[str, str]] = {
    "github": "repository",
    "jira": "project",
    "gitlab": "project",
    "linear": "team",
}
# A GitHub organisation-wide link: ref "acme" routes every acme/* repository without a repository link.
GITHUB_ORGANIZATION: Final = "organization"
SUBJECT_TYPE: Final = "Workspace"
DEFAULT_MAX_AGE_SECONDS: Final = 300.0
DEFAULT_MAX_ENTRIES: Final = 4096

_GITHUB_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
_GITHUB_REPO = re.compile(r"[A-Za-z0-9._-]{1,100}")
_JIRA_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,254}")
_GITLAB_SEGMENT = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*")
_LINEAR_KEY = re.compile(r"[A-Za-z0-9]{1,32}")


class LinkError(ValueError):
    """A tracker or source that cannot name a workspace link; the message says why, in a user's words."""


@dataclass(frozen=True, slots=True, order=True)
class LinkTarget:
    """What a workspace link points at: a tracker source, as Kantata stores it (``ref`` normalised)."""

    tracker: str
    service_model: str
    ref: str

    @property
    def source(self) -> str:
        """The source as the routing document writes it: ``acme/webapp``, ``PROJ``, ``acme/*`` (organisation)."""
        return f"{self.ref}/*" if self.service_model == GITHUB_ORGANIZATION else self.ref

    @property
    def kind(self) -> str:
        """``repository``, ``organization``, ``project`` or ``team``: what the link names, for messages."""
        return self.service_model

    def describe(self) -> str:
        """``github repository acme/webapp``: for messages."""
        return f"{self.tracker} {self.kind} {self.source}"


def _normalise(tracker: str, ref: str) -> str:
    # The spelling mapping.routing's matchers compare in: case-insensitive trackers lower, key trackers upper.
    return ref.upper() if tracker in ("jira", "linear") else ref.casefold()


def link_target(tracker: str, source: str) -> LinkTarget:
    """The link ``source`` of ``tracker`` names, normalised. Raises LinkError saying what is wrong.

    GitHub: ``owner/repo`` (a repository) or ``owner/*`` / ``owner`` (the organisation). Jira: a project key
    (``PROJ``). GitLab: one project's path (``group/sub/project``; a whole group is a route's ``group/**``,
    not a link). Linear: a team key (``ENG``).
    """
    from kantata_bridge.mapping.config import source_problem

    if tracker not in LINK_MODELS:
        raise LinkError(f"unknown tracker {tracker!r}; one of {', '.join(LINK_MODELS)}")
    text = source.strip() if isinstance(source, str) else ""
    if not text:
        raise LinkError(f"the {tracker} source must not be empty")
    if tracker == "github":
        owner, slash, repo = text.partition("/")
        if not slash or repo == "*":
            if not _GITHUB_OWNER.fullmatch(owner):
                raise LinkError(f"{text!r} is not a GitHub owner (letters, digits and '-')")
            return LinkTarget(tracker, GITHUB_ORGANIZATION, _normalise(tracker, owner))
        problem = source_problem(tracker, text)
        if problem or not (_GITHUB_OWNER.fullmatch(owner) and _GITHUB_REPO.fullmatch(repo)):
            raise LinkError(f"{text!r}: a GitHub source must be 'owner/repo' or 'owner/*' (the organisation)")
    elif tracker == "jira":
        if not _JIRA_KEY.fullmatch(text):
            raise LinkError(
                f"{text!r} is not a Jira project key such as PROJ (a letter, then letters, digits, _)"
            )
    elif tracker == "gitlab":
        problem = source_problem(tracker, text)
        if "*" in text:
            raise LinkError(
                f"{text!r}: a link names one GitLab project; for a whole group use a route with "
                "'group/*' or 'group/**' in the routing document"
            )
        if problem or not all(_GITLAB_SEGMENT.fullmatch(part) for part in text.split("/")):
            raise LinkError(f"{text!r}: a GitLab source must be a project path such as group/sub/project")
    elif source_problem(tracker, text) or not _LINEAR_KEY.fullmatch(text):  # linear
        raise LinkError(f"{text!r} is not a Linear team key such as ENG (letters and digits)")
    return LinkTarget(tracker, LINK_MODELS[tracker], _normalise(tracker, text))


def lookup_targets(tracker: str, project: str) -> tuple[LinkTarget, ...]:
    """The links that would route an event of ``tracker`` from ``project`` (TrackerEvent.project), most
    specific first: a GitHub repository, then its organisation; one target for the other trackers. Empty when
    ``project`` cannot be linked (an unknown tracker, a malformed source): such an event has no link."""
    try:
        target = link_target(tracker, project)
    except LinkError:
        return ()
    if target.service_model == GITHUB_ORGANIZATION:
        return ()  # an event always comes from one repository; "acme" alone is no event's source
    if tracker == "github":
        return (target, LinkTarget(tracker, GITHUB_ORGANIZATION, target.ref.partition("/")[0]))
    return (target,)


def target_of(ref: ExternalReference) -> LinkTarget | None:
    """The link a workspace's external reference makes, or None when it is not one the bridge routes by (its
    subject is not a workspace, another service, another model, or a ref no source can have)."""
    if ref.subject_type != SUBJECT_TYPE or ref.service_name not in LINK_MODELS:
        return None
    models: tuple[str, ...] = (LINK_MODELS[ref.service_name],)
    if ref.service_name == "github":
        models += (GITHUB_ORGANIZATION,)
    if ref.service_model not in models:
        return None
    source = ref.service_model_ref
    if ref.service_model == GITHUB_ORGANIZATION:
        source = source.strip() + "/*"
    try:
        target = link_target(ref.service_name, source)
    except LinkError:
        return None
    return target if target.service_model == ref.service_model else None


def source_url(target: LinkTarget) -> str | None:
    """The source's page when it can be built without a site setting: GitHub's; None for the others (their
    address depends on the site: pass it to ``link add --url``)."""
    if target.tracker == "github":
        return f"https://github.com/{target.ref}"
    return None


# ---------------------------------------------------------------------------------------------------- I/O


class LinkReader(Protocol):
    """What the links need from the Kantata client (kantata.client.KantataClient has it)."""

    def list_external_references(
        self,
        subject_type: str,
        *,
        subject_id: int | None = ...,
        service_name: str | None = ...,
        service_model: str | None = ...,
        service_model_ref: str | None = ...,
        include: Sequence[str] = ...,
    ) -> Iterable[ExternalReference]: ...

    def get_workspace(self, workspace_id: str | int, *, include: Sequence[str] = ...) -> Workspace: ...


@dataclass(frozen=True, slots=True)
class WorkspaceLink:
    """One workspace's link as read from Kantata. ``workspace`` is None when Kantata did not show the workspace
    (archived, deleted, or out of the token's reach); ``routable`` says whether the bridge routes by it."""

    workspace_id: str
    target: LinkTarget
    reference_id: str
    external_link: str | None
    workspace: Workspace | None

    @property
    def routable(self) -> bool:
        return self.workspace is not None and self.workspace.archived is not True


def read_links(
    client: LinkReader,
    *,
    target: LinkTarget | None = None,
    tracker: str | None = None,
    workspace_id: str | None = None,
) -> list[WorkspaceLink]:
    """The workspace links Kantata holds for ``target`` (or of ``tracker``, or of one workspace), sorted by
    tracker, source and ascending workspace id.

    One ``GET /external_references?subject_type=Workspace&…&include=subject`` (the string ``service_model_ref``
    filter, not ``GET /workspaces``, which has its own rate limit). The workspaces come side-loaded; a
    workspace Kantata left out is reported with ``workspace`` None. Only if Kantata ignored the include (no
    ``subject_ref``) is each workspace read with ``GET /workspaces/{id}`` (404: not shown). Raises the
    client's KantataError.
    """
    from kantata_bridge.kantata.errors import NotFoundError

    if target is not None:
        tracker = target.tracker
    refs = client.list_external_references(
        SUBJECT_TYPE,
        subject_id=int(workspace_id) if workspace_id is not None else None,
        service_name=tracker,
        service_model=target.service_model if target is not None else None,
        service_model_ref=target.ref if target is not None else None,
        include=("subject",),
    )
    read: dict[str, Workspace | None] = {}
    links: list[WorkspaceLink] = []
    for ref in refs:
        found = target_of(ref)
        # Checked here too: the filters are Kantata's, and a looser match must not route anything.
        if found is None or ref.subject_id is None or (target is not None and found != target):
            continue
        ws_id = str(ref.subject_id)
        if ref.subject_ref is not None:
            workspace = ref.workspace
        elif ws_id in read:
            workspace = read[ws_id]
        else:
            try:
                workspace = client.get_workspace(ws_id)
            except NotFoundError:
                workspace = None
            read[ws_id] = workspace
        links.append(WorkspaceLink(ws_id, found, ref.id, ref.external_link, workspace))
    links.sort(
        key=lambda link: (list(LINK_MODELS).index(link.target.tracker), link.target, int(link.workspace_id))
    )
    return links


@dataclass(frozen=True, slots=True)
class _Entry:
    at: float
    workspace_ids: tuple[str, ...]


class WorkspaceLinks:
    """The workspaces Kantata links to a tracker source, cached for the worker.

    ``client()`` returns the Kantata client (the worker's ``KantataClientSource``: called only on a cache
    miss). Answers, empty ones included, are kept ``max_age_seconds`` (default 300: a link made or removed in
    Kantata takes effect within five minutes, and a steady stream of events costs one lookup per source per
    five minutes per warm worker; README "Linking Kantata workspaces"). At most ``max_entries`` answers are
    kept (the oldest go first). ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        client: Callable[[], LinkReader],
        *,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if not max_age_seconds >= 0:  # also refuses nan
            raise ValueError(f"max_age_seconds must be 0 or more; got {max_age_seconds!r}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1; got {max_entries!r}")
        self._client = client
        self.max_age_seconds = float(max_age_seconds)
        self._clock = clock
        self._max_entries = max_entries
        self._cache: dict[LinkTarget, _Entry] = {}

    def workspaces_for(self, tracker: str, source: str) -> tuple[str, ...]:
        """The ids of the workspaces linked to ``source`` of ``tracker`` (TrackerEvent.project) that Kantata
        shows (not archived), ascending; () when none is. Several: the caller uses the first and says which
        others it passed over. A GitHub repository's own links win; only without one do its organisation's
        links count. Case rules as the routes' (GitHub and GitLab case-insensitive, Jira and Linear keys
        upper case). Raises the client's KantataError (nothing is cached then)."""
        for target in lookup_targets(tracker, source):
            found = self._lookup(target)
            if found:
                return found
        return ()

    def invalidate(self) -> None:
        """Forget every answer (e.g. after a 404 on a workspace an answer named): the next call asks Kantata."""
        self._cache.clear()

    def _lookup(self, target: LinkTarget) -> tuple[str, ...]:
        now = self._clock()
        entry = self._cache.get(target)
        if entry is not None and now - entry.at < self.max_age_seconds:
            return entry.workspace_ids
        links = read_links(self._client(), target=target)
        ids = tuple(sorted({link.workspace_id for link in links if link.routable}, key=int))
        self._cache.pop(target, None)  # re-inserted last: the dict's order is the entries' age
        self._cache[target] = _Entry(now, ids)
        while len(self._cache) > self._max_entries:
            del self._cache[next(iter(self._cache))]
        return ids
