"""Task sync: the Kantata task linked to a tracker object takes the tracker's status.

A task (a Kantata *story*) is linked to a tracker object by an external reference on the story with the same
``service_name`` / ``service_model`` / ``service_model_ref`` the object's status reports carry. On every
change the worker applies (after the status report, under the same claim and lease, so a stale event never
moves a task back), a route with ``tasks: update`` or ``create``:

1. finds the linked task: the id cached on the object's VERSION item (ordering.py), else a lookup by
   external reference (``GET /stories``), else, with ``tasks: create`` and unless the object was deleted, a
   new task in the routed workspace (``POST /stories``, sent once; a redelivery looks the task up before it
   creates again, so a lost answer never makes a second task);
2. chooses the Kantata status (``choose_status``, pure): a status of the same name in the set assigned to the
   task's workspace (case-insensitive), else the route's ``task_statuses`` map, else the default status of the
   matching category (Jira new → not started, indeterminate → started, done → completed; GitHub open and
   draft → not started, closed/merged → completed; GitLab and Linear by their state types);
3. writes it with one ``PUT /stories/{id}`` (status by name, and the story's external reference with the
   tracker's status, link and title), only when it differs from what the bridge last wrote (kept on the
   VERSION item, so a known task costs no Kantata read). A 404 on the cached id drops it and looks again.

A deleted tracker object never creates a task; its linked task keeps its status (``on_delete: leave``, the
reference says ``deleted``) or moves to the completed category's default (``on_delete: complete``). A tracker
status with no Kantata counterpart leaves the task alone, and the outcome says which status and which set.
The workspace's statuses (names and categories) are cached per process for ``STATUS_CACHE_SECONDS``, and so
is "no task is linked to this object" under ``tasks: update`` (``UnlinkedObjects``): an object nobody linked
costs one lookup per five minutes per warm worker instead of one per delivery, and a task linked in Kantata is
followed from the object's next change at most five minutes later (as workspace links are, routing.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from kantata_bridge.kantata.errors import NotFoundError
from kantata_bridge.kantata.models import NewStory, Story, StoryExternalReference, TaskStatusSet, Workspace
from kantata_bridge.mapping.config import Route, TaskSettings
from kantata_bridge.mapping.rules import truncate
from kantata_bridge.tracker_event import Action, TrackerEvent

STATUS_CACHE_SECONDS: Final = 300
# The four statuses of a workspace without a task status set (and their categories), CONTRACT §6.7.
DEFAULT_STATUSES: Final = (
    ("not started", "not started"),
    ("started", "started"),
    ("needs info", "needs info"),
    ("completed", "completed"),
)
# A tracker's status category → the Kantata task status category (see the module docstring).
KANTATA_CATEGORIES: Final[Mapping[str, str]] = {
    # Jira
    "new": "not started",
    "indeterminate": "started",
    "done": "completed",
    # GitHub, GitLab states
    "open": "not started",
    "opened": "not started",
    "draft": "not started",
    "closed": "completed",
    "merged": "completed",
    "locked": "started",
    # GitLab work item status categories
    "triage": "not started",
    "to_do": "not started",
    "in_progress": "started",
    # Linear state types (and GitLab's canceled)
    "backlog": "not started",
    "unstarted": "not started",
    "started": "started",
    "completed": "completed",
    "canceled": "completed",
    "cancelled": "completed",
}
DELETED: Final = "deleted"


class TaskClient(Protocol):
    """What task sync needs from the Kantata client."""

    def list_stories(self, **filters: Any) -> Any: ...

    def create_story(self, new_story: NewStory) -> Story: ...

    def update_story(self, story_id: str | int, **fields: Any) -> Story: ...

    def get_workspace(self, workspace_id: str | int) -> Workspace: ...

    def get_task_status_set(self, set_id: str | int, *, include_statuses: bool = True) -> TaskStatusSet: ...


@dataclass(frozen=True, slots=True)
class StatusSet:
    """The statuses a workspace's tasks can take: ``(name, category)`` in position order, and the set's name
    (None: the workspace has no set, so the four defaults apply)."""

    name: str | None
    statuses: tuple[tuple[str, str], ...]

    @property
    def label(self) -> str:
        return f"set {self.name!r}" if self.name else "the four default statuses (no set assigned)"


@dataclass(frozen=True, slots=True)
class StatusChoice:
    """The Kantata status for a tracker status: ``name`` (None: none fits) and ``how`` it was chosen."""

    name: str | None
    how: str
    exact: bool = False  # found by name or by the route's map (not a category fallback)


def kantata_category(event: TrackerEvent) -> str | None:
    return KANTATA_CATEGORIES.get(event.status_category.casefold())


def choose_status(event: TrackerEvent, settings: TaskSettings, status_set: StatusSet) -> StatusChoice:
    """The Kantata status a task linked to ``event``'s object should have (pure; see the module docstring)."""
    by_name = {name.casefold(): name for name, _ in status_set.statuses}
    wanted = event.status_name.strip()
    if wanted.casefold() in by_name:
        return StatusChoice(
            by_name[wanted.casefold()], f"same name as {event.tracker}'s {wanted!r}", exact=True
        )
    mapped = settings.statuses.get(wanted.casefold())
    if mapped is not None:
        if mapped.casefold() in by_name:
            return StatusChoice(by_name[mapped.casefold()], f"route's task_statuses: {wanted!r}", exact=True)
        return StatusChoice(
            None, f"the route maps {wanted!r} to {mapped!r}, which is not in {status_set.label}"
        )
    category = kantata_category(event)
    if category is not None:
        for name, status_category in status_set.statuses:
            if status_category == category:
                return StatusChoice(
                    name, f"no {wanted!r} in {status_set.label}: default of category {category!r}"
                )
    return StatusChoice(
        None,
        f"no {wanted!r} in {status_set.label}, and no status of category "
        f"{category or event.status_category!r} to fall back to",
    )


class StatusSets:
    """Each workspace's statuses, read from Kantata and cached per process (``STATUS_CACHE_SECONDS``):
    ``GET /workspaces/{id}`` and, when a set is assigned, ``GET /task_status_sets/{id}?include=…``."""

    def __init__(self, max_age: float = STATUS_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, StatusSet]] = {}

    def for_workspace(self, client: TaskClient, workspace_id: str) -> StatusSet:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(workspace_id)
        if hit is not None and now - hit[0] < self.max_age:
            return hit[1]
        workspace = client.get_workspace(workspace_id)
        if workspace.task_status_set_id:
            status_set = client.get_task_status_set(workspace.task_status_set_id, include_statuses=True)
            found = StatusSet(
                name=status_set.name,
                statuses=tuple(
                    (s.status, s.category) for s in sorted(status_set.statuses, key=lambda s: s.position)
                ),
            )
        else:
            found = StatusSet(name=None, statuses=DEFAULT_STATUSES)
        with self._lock:
            self._cache[workspace_id] = (now, found)
        return found

    def forget(self, workspace_id: str | None = None) -> None:
        with self._lock:
            if workspace_id is None:
                self._cache.clear()
            else:
                self._cache.pop(workspace_id, None)


class UnlinkedObjects:
    """Objects found with no linked task, remembered per process for ``max_age`` seconds (at most ``limit``
    of them, the oldest dropped first), so a stream of changes to an object nobody linked does not look it up
    in Kantata on every delivery."""

    def __init__(
        self,
        max_age: float = STATUS_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        limit: int = 10_000,
    ):
        self.max_age = max_age
        self.clock = clock
        self.limit = limit
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str, str], float] = {}

    @staticmethod
    def _key(event: TrackerEvent) -> tuple[str, str, str]:
        return (event.tracker, event.model.value, event.ref)

    def age(self, event: TrackerEvent) -> float | None:
        """Seconds since the object was found unlinked, or None when that is unknown or too old."""
        with self._lock:
            seen = self._seen.get(self._key(event))
        if seen is None:
            return None
        age = self.clock() - seen
        return age if age < self.max_age else None

    def add(self, event: TrackerEvent) -> None:
        with self._lock:
            self._seen.pop(self._key(event), None)
            self._seen[self._key(event)] = self.clock()
            while len(self._seen) > self.limit:
                del self._seen[next(iter(self._seen))]

    def forget(self, event: TrackerEvent) -> None:
        with self._lock:
            self._seen.pop(self._key(event), None)


@dataclass(frozen=True, slots=True)
class TaskLink:
    """What the object's VERSION item keeps about its task: the id, the workspace, and what the bridge last
    wrote (status and reference fields), so an unchanged task costs no Kantata call."""

    task_id: str
    workspace_id: str
    written: Mapping[str, str | None]

    def to_attributes(self) -> dict[str, Any]:
        return {
            "task_id": {"S": self.task_id},
            "task_workspace_id": {"S": self.workspace_id},
            "task_written": {"S": json.dumps(dict(self.written), sort_keys=True)},
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> TaskLink | None:
        if not item or "task_id" not in item:
            return None
        try:
            written = json.loads(item.get("task_written", {}).get("S", "{}"))
        except ValueError:
            written = {}
        return cls(
            task_id=item["task_id"]["S"],
            workspace_id=item.get("task_workspace_id", {}).get("S", ""),
            written=written if isinstance(written, dict) else {},
        )


@dataclass(frozen=True, slots=True)
class TaskResult:
    """What task sync did: ``action`` (updated, created, unchanged, left alone, not linked, forgotten),
    the task, its status before and after, and a sentence for the outcome. ``link`` is the new cache value
    (None: forget the cached task; ``keep``: unchanged)."""

    action: str
    text: str
    task_id: str | None = None
    from_status: str | None = None
    to_status: str | None = None
    link: TaskLink | None = None
    keep_link: bool = True
    choice: StatusChoice | None = None


def reference_for(event: TrackerEvent, *, message_limit: int = 255) -> StoryExternalReference:
    """The story's external reference for ``event``'s object (the same identity as the status reports)."""
    deleted = event.action is Action.DELETED
    return StoryExternalReference(
        service_name=event.tracker,
        service_model=event.model.value,
        service_model_ref=event.ref,
        status="successful",
        external_status=DELETED if deleted else event.status_name,
        external_link=event.link,
        external_message=truncate(event.title, message_limit),
    )


def _written(status: str | None, ref: StoryExternalReference) -> dict[str, str | None]:
    return {
        "status": status,
        "external_status": ref.external_status,
        "external_link": ref.external_link,
        "external_message": ref.external_message,
    }


class TaskSync:
    """Keeps an object's linked task in step for one delivery (see the module docstring). ``ensure_time`` is
    called before every Kantata write (it raises when the invocation has no time left for one)."""

    def __init__(
        self, status_sets: StatusSets | None = None, unlinked: UnlinkedObjects | None = None
    ) -> None:
        self.status_sets = status_sets or StatusSets()
        self.unlinked = unlinked or UnlinkedObjects()

    def sync(
        self,
        client: TaskClient,
        event: TrackerEvent,
        route: Route,
        cached: TaskLink | None,
        ensure_time: Callable[[], None],
        *,
        message_limit: int = 255,
    ) -> TaskResult:
        settings = route.tasks
        ref = reference_for(event, message_limit=message_limit)
        if cached is not None:
            try:
                return self._update_known(client, event, settings, ref, cached, ensure_time)
            except NotFoundError:
                # The task was deleted in Kantata (or is out of the token's sight): forget it, look again.
                self.status_sets.forget(cached.workspace_id)
        elif settings.mode != "create" and (age := self.unlinked.age(event)) is not None:
            return TaskResult(
                "not linked",
                f"no Kantata task is linked to {event.ref} (looked up {age:.0f} s ago)",
                keep_link=True,
            )
        story = self.find(client, event, route)
        if story is not None:
            self.unlinked.forget(event)
            return self._update_found(client, event, settings, ref, story, ensure_time)
        if settings.mode != "create":
            self.unlinked.add(event)
            return TaskResult(
                "not linked", f"no Kantata task is linked to {event.ref}", keep_link=cached is None
            )
        if event.action is Action.DELETED:
            return TaskResult(
                "not linked",
                f"{event.ref} was deleted and has no linked task: none is created",
                keep_link=False,
            )
        return self._create(client, event, route, ref, ensure_time, message_limit)

    # ------------------------------------------------------------------ steps

    def desired(
        self, client: TaskClient, event: TrackerEvent, settings: TaskSettings, workspace_id: str
    ) -> StatusChoice | None:
        """The status to write, or None to leave the status as it is (a deletion with ``on_delete: leave``)."""
        if event.action is Action.DELETED:
            if settings.on_delete == "leave":
                return None
            status_set = self.status_sets.for_workspace(client, workspace_id)
            done = next((n for n, c in status_set.statuses if c == "completed"), None)
            return StatusChoice(done, f"{event.ref} was deleted: on_delete complete")
        return choose_status(event, settings, self.status_sets.for_workspace(client, workspace_id))

    def _update_known(
        self,
        client: TaskClient,
        event: TrackerEvent,
        settings: TaskSettings,
        ref: StoryExternalReference,
        cached: TaskLink,
        ensure_time: Callable[[], None],
    ) -> TaskResult:
        choice = self.desired(client, event, settings, cached.workspace_id)
        last = cached.written.get("status")
        status = choice.name if choice is not None else None
        if choice is not None and status is None:
            return self._left_alone(event, cached.task_id, last, choice, cached)
        written = _written(status or last, ref)
        if dict(cached.written) == written:
            return TaskResult(
                "unchanged",
                f"task {cached.task_id} is already {last!r}",
                task_id=cached.task_id,
                from_status=last,
                to_status=last,
                choice=choice,
            )
        ensure_time()
        client.update_story(cached.task_id, status=status if status != last else None, external_reference=ref)
        return self._moved(cached.task_id, last, status or last, choice, cached.workspace_id, written)

    def _update_found(
        self,
        client: TaskClient,
        event: TrackerEvent,
        settings: TaskSettings,
        ref: StoryExternalReference,
        story: Story,
        ensure_time: Callable[[], None],
    ) -> TaskResult:
        workspace_id = story.workspace_id or ""
        choice = self.desired(client, event, settings, workspace_id)
        current = story.status
        status = choice.name if choice is not None else None
        if choice is not None and status is None:
            link = TaskLink(story.id, workspace_id, _written(current, ref))
            return self._left_alone(event, story.id, current, choice, link)
        written = _written(status or current, ref)
        ours = next((r for r in story.external_references if r.service_name == event.tracker), None)
        same_ref = ours is not None and (
            ours.external_status,
            ours.external_link,
            ours.external_message,
        ) == (ref.external_status, ref.external_link, ref.external_message)
        if (status is None or (current or "").casefold() == status.casefold()) and same_ref:
            return TaskResult(
                "unchanged",
                f"task {story.id} is already {current!r}",
                task_id=story.id,
                from_status=current,
                to_status=current,
                link=TaskLink(story.id, workspace_id, written),
                choice=choice,
            )
        ensure_time()
        send_status = (
            status if status is not None and (current or "").casefold() != status.casefold() else None
        )
        client.update_story(story.id, status=send_status, external_reference=ref)
        return self._moved(story.id, current, status or current, choice, workspace_id, written)

    def _create(
        self,
        client: TaskClient,
        event: TrackerEvent,
        route: Route,
        ref: StoryExternalReference,
        ensure_time: Callable[[], None],
        message_limit: int,
    ) -> TaskResult:
        choice = choose_status(event, route.tasks, self.status_sets.for_workspace(client, route.workspace_id))
        new = NewStory(
            workspace_id=route.workspace_id,
            title=truncate(event.title or event.ref, message_limit),
            status=choice.name,
            description=truncate(f"{event.ref}: {event.link}\nLinked by kantata-bridge.", 999),
            due_date=event.due_date,
            external_reference=ref,
        )
        ensure_time()
        story = client.create_story(new)
        status = story.status or choice.name
        how = f" ({choice.how})" if choice.name else f" (Kantata's default: {choice.how})"
        return TaskResult(
            "created",
            f"created task {story.id} in workspace {route.workspace_id} as {status!r}{how}",
            task_id=story.id,
            to_status=status,
            link=TaskLink(story.id, route.workspace_id, _written(status, ref)),
            keep_link=False,
            choice=choice,
        )

    def find(self, client: TaskClient, event: TrackerEvent, route: Route) -> Story | None:
        """The task linked to the object by external reference: the one in the routed workspace, else the
        lowest id (a redelivery after a lost create finds the task made then)."""
        stories = [
            s
            for s in client.list_stories(
                external_reference_service_name=event.tracker,
                external_reference_service_model=event.model.value,
                external_reference_service_model_refs=[event.ref],
            )
            if not s.deleted_at
        ]
        if not stories:
            return None
        stories.sort(key=lambda s: (s.workspace_id != route.workspace_id, int(s.id) if s.id.isdigit() else 0))
        found: Story = stories[0]
        return found

    @staticmethod
    def _moved(
        task_id: str,
        before: str | None,
        after: str | None,
        choice: StatusChoice | None,
        workspace_id: str,
        written: dict[str, str | None],
    ) -> TaskResult:
        if choice is None:
            text = f"task {task_id}: status left as {before!r} (the object was deleted); reference updated"
        elif before is not None and after is not None and before.casefold() == after.casefold():
            text = f"task {task_id} stays {after!r}; reference updated"
        else:
            text = f"moved task {task_id} from {before!r} to {after!r} ({choice.how})"
        return TaskResult(
            "updated",
            text,
            task_id=task_id,
            from_status=before,
            to_status=after,
            link=TaskLink(task_id, workspace_id, written),
            keep_link=False,
            choice=choice,
        )

    @staticmethod
    def _left_alone(
        event: TrackerEvent, task_id: str, current: str | None, choice: StatusChoice, link: TaskLink
    ) -> TaskResult:
        return TaskResult(
            "left alone",
            f"task {task_id} left at {current!r}: {choice.how}",
            task_id=task_id,
            from_status=current,
            to_status=current,
            link=link,
            keep_link=False,
            choice=choice,
        )


def preview(client: TaskClient | None, event: TrackerEvent, route: Route) -> dict[str, Any]:
    """What task sync would do for ``event`` on ``route``, writing nothing (``explain``). With ``client``,
    the linked task and the workspace's statuses are read from Kantata (GETs only); without, the rule is told.
    """
    settings = route.tasks
    out: dict[str, Any] = {"mode": settings.mode, "on_delete": settings.on_delete}
    if settings.mode == "off":
        out["would"] = "nothing: tasks are off for this route"
        return out
    deleted = event.action is Action.DELETED
    if client is None:
        if deleted:
            out["would"] = (
                "mark the linked task's reference deleted"
                + (
                    " and move it to the completed category's default"
                    if settings.on_delete == "complete"
                    else ""
                )
                + " (never create one)"
            )
        else:
            category = kantata_category(event) or event.status_category
            out["would"] = (
                f"set the linked task to a status named {event.status_name!r} if its workspace's set has one, "
                f"else the route's task_statuses, else the default of category {category!r}"
                + ("; create the task if none is linked" if settings.mode == "create" else "")
            )
        out["note"] = "give --kantata-token-env to read the linked task and its workspace's statuses"
        return out
    sync = TaskSync()
    story = sync.find(client, event, route)
    if story is None:
        if settings.mode == "create" and not deleted:
            made = choose_status(event, settings, sync.status_sets.for_workspace(client, route.workspace_id))
            out["would"] = f"create a task in workspace {route.workspace_id} as {made.name!r} ({made.how})"
        else:
            out["would"] = f"nothing: no Kantata task is linked to {event.ref}"
        return out
    choice = sync.desired(client, event, settings, story.workspace_id or "")
    out["task"] = {"id": story.id, "workspace_id": story.workspace_id, "status": story.status}
    if choice is None:
        out["would"] = f"leave task {story.id} at {story.status!r} and mark its reference deleted"
    elif choice.name is None:
        out["would"] = f"leave task {story.id} at {story.status!r}: {choice.how}"
    elif (story.status or "").casefold() == choice.name.casefold():
        out["would"] = f"leave task {story.id} at {story.status!r} (already there; {choice.how})"
    else:
        out["would"] = f"move task {story.id} from {story.status!r} to {choice.name!r} ({choice.how})"
    hint = status_set_hint(choice, event)
    if hint:
        out["hint"] = hint
    return out


def status_set_hint(choice: StatusChoice | None, event: TrackerEvent) -> str | None:
    """What an operator can run when the tracker's status has no counterpart of the same name."""
    if choice is None or choice.exact:
        return None
    return (
        f"add a status named {event.status_name!r} to the workspace's task status set: put it in the catalog and "
        "run `kantata-bridge catalog apply` (docs/catalog.md), or map it with the route's task_statuses"
    )


def outcome_fields(result: TaskResult | None) -> dict[str, Any]:
    """The task fields of a delivery's outcome."""
    if result is None:
        return {}
    return {"task_id": result.task_id, "task": f"{result.action}: {result.text}"}


def link_change(link: TaskLink | None) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    """The VERSION item attributes that cache ``link`` (sets, removes); None forgets the cached task."""
    if link is None:
        return None, ("task_id", "task_workspace_id", "task_written")
    return link.to_attributes(), ()
