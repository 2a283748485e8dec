"""Task sync with in-memory fakes: which status a linked task takes, and how few Kantata calls it costs."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from kantata_bridge.kantata.errors import NotFoundError
from kantata_bridge.kantata.models import Story, Workspace
from kantata_bridge.mapping.config import Route, TaskSettings, build_config
from kantata_bridge.tracker_event import Action, Model, TrackerEvent
from kantata_bridge.worker.tasks import (
    DEFAULT_STATUSES,
    StatusChoice,
    StatusSet,
    TaskLink,
    TaskSync,
    UnlinkedObjects,
    choose_status,
    reference_for,
)

JIRA_SET = StatusSet(
    "PROJ workflow",
    (
        ("To Do", "not started"),
        ("In Progress", "started"),
        ("In Review", "started"),
        ("Waiting for customer", "needs info"),
        ("Done", "completed"),
    ),
)


def event(
    status="In Progress", category="indeterminate", *, tracker="jira", action=Action.STATUS_CHANGED, **kw
):
    fields = {
        "tracker": tracker,
        "model": Model.ISSUE,
        "ref": "PROJ-12",
        "title": "Checkout fails on Safari",
        "status_name": status,
        "status_category": category,
        "link": "https://acme.atlassian.net/browse/PROJ-12",
        "action": action,
        "version": dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC),
        "project": "PROJ",
    }
    fields.update(kw)
    return TrackerEvent(**fields)


@pytest.mark.parametrize(
    ("status", "category", "mapped", "status_set", "expected", "exact"),
    [
        # the same name, whatever its case
        ("In Review", "indeterminate", {}, JIRA_SET, "In Review", True),
        ("in review", "indeterminate", {}, JIRA_SET, "In Review", True),
        # no such name: the route's map
        ("Code Review", "indeterminate", {"code review": "In Review"}, JIRA_SET, "In Review", True),
        # no name, no map: the first status of the matching category
        ("QA", "indeterminate", {}, JIRA_SET, "In Progress", False),
        ("Backlog", "new", {}, JIRA_SET, "To Do", False),
        ("Closed", "done", {}, JIRA_SET, "Done", False),
        # GitHub, GitLab, Linear categories
        ("open", "open", {}, JIRA_SET, "To Do", False),
        ("draft", "draft", {}, JIRA_SET, "To Do", False),
        ("merged", "merged", {}, JIRA_SET, "Done", False),
        ("Started", "started", {}, JIRA_SET, "In Progress", False),
        ("Canceled", "canceled", {}, JIRA_SET, "Done", False),
        # a workspace without a set: the four defaults
        ("closed", "closed", {}, StatusSet(None, DEFAULT_STATUSES), "completed", False),
        # nothing fits: left alone
        ("Weird", "unheard-of", {}, JIRA_SET, None, False),
        ("Code Review", "indeterminate", {"code review": "Peer Review"}, JIRA_SET, None, False),
    ],
)
def test_a_linked_task_takes_the_status_of_the_same_name_then_the_map_then_the_category_default(
    status, category, mapped, status_set, expected, exact
):
    choice = choose_status(event(status, category), TaskSettings("update", mapped), status_set)
    assert (choice.name, choice.exact) == (expected, exact)


def test_no_counterpart_says_which_status_and_which_set():
    choice = choose_status(event("Weird", "unheard-of"), TaskSettings("update"), JIRA_SET)
    assert choice == StatusChoice(
        None,
        "no 'Weird' in set 'PROJ workflow', and no status of category 'unheard-of' to fall back to",
    )


class FakeKantata:
    """Stories and workspaces in memory; ``calls`` lists every request a real client would send."""

    def __init__(self):
        self.calls: list[tuple[str, object]] = []
        self.stories: dict[str, Story] = {}
        self.workspaces = {
            "100": Workspace("100", "Acme", task_status_set_id="7", task_status_set_name="PROJ")
        }
        self.next_id = 500
        self.fail_create_once = False

    def get_workspace(self, workspace_id, include=()):
        self.calls.append(("GET workspace", workspace_id))
        return self.workspaces[str(workspace_id)]

    def get_task_status_set(self, set_id, include_statuses=True):
        from kantata_bridge.kantata.models import CustomTaskStatus, TaskStatusSet

        self.calls.append(("GET set", set_id))
        statuses = tuple(
            CustomTaskStatus(str(i), name, category, i, 7)
            for i, (name, category) in enumerate(JIRA_SET.statuses)
        )
        return TaskStatusSet("7", "PROJ workflow", statuses=statuses)

    def list_stories(self, **filters):
        self.calls.append(("GET stories", filters["external_reference_service_model_refs"]))
        return [
            s
            for s in self.stories.values()
            if s.description == filters["external_reference_service_model_refs"][0]
        ]

    def create_story(self, new):
        self.calls.append(("POST story", new.status))
        self.next_id += 1
        story = Story(
            str(self.next_id),
            new.title,
            status=new.status,
            workspace_id=str(new.workspace_id),
            description="PROJ-12",
        )
        self.stories[story.id] = story
        return story

    def update_story(self, story_id, **fields):
        self.calls.append(("PUT story", fields.get("status")))
        if story_id not in self.stories:
            raise NotFoundError("Kantata PUT /stories: not found", status=404)
        story = self.stories[story_id]
        if fields.get("status"):
            self.stories[story_id] = dataclasses.replace(story, status=fields["status"])
        return self.stories[story_id]


def route(mode="update", **kw):
    return Route("jira", "PROJ", "100", tasks=TaskSettings(mode, **kw))


def sync(kantata, ev, r, cached=None):
    return TaskSync().sync(kantata, ev, r, cached, lambda: None)


def test_a_known_task_whose_status_changed_costs_one_put_and_no_read_of_the_task():
    kantata = FakeKantata()
    kantata.stories["501"] = Story("501", "t", status="To Do", workspace_id="100", description="PROJ-12")
    ref = reference_for(event("To Do", "new"))
    cached = TaskLink("501", "100", {"status": "To Do", **_ref_fields(ref)})
    tasks = TaskSync()
    result = tasks.sync(kantata, event(), route(), cached, lambda: None)
    assert (result.action, result.from_status, result.to_status) == ("updated", "To Do", "In Progress")
    assert result.text == "moved task 501 from 'To Do' to 'In Progress' (same name as jira's 'In Progress')"
    assert [c[0] for c in kantata.calls] == ["GET workspace", "GET set", "PUT story"]
    # The workspace's statuses are cached: the next change of the same object is one PUT only
    kantata.calls.clear()
    again = tasks.sync(kantata, event("In Review"), route(), result.link, lambda: None)
    assert again.to_status == "In Review"
    assert kantata.calls == [("PUT story", "In Review")]


def _ref_fields(ref):
    return {
        "external_status": ref.external_status,
        "external_link": ref.external_link,
        "external_message": ref.external_message,
    }


def test_nothing_is_written_when_the_task_already_has_what_the_tracker_says():
    kantata = FakeKantata()
    ref = reference_for(event())
    cached = TaskLink("501", "100", {"status": "In Progress", **_ref_fields(ref)})
    result = sync(kantata, event(), route(), cached)
    assert result.action == "unchanged"
    assert [c for c in kantata.calls if c[0].startswith(("PUT", "POST"))] == []


def test_a_cached_task_deleted_in_kantata_is_forgotten_and_looked_up_again():
    kantata = FakeKantata()
    kantata.stories["777"] = Story("777", "t", status="To Do", workspace_id="100", description="PROJ-12")
    cached = TaskLink("501", "100", {"status": "To Do"})  # 501 is gone
    result = sync(kantata, event(), route(), cached)
    assert (result.action, result.task_id) == ("updated", "777")
    assert result.link is not None
    assert result.link.task_id == "777"


@pytest.mark.parametrize("mode", ["update", "create"])
def test_update_mode_never_creates_and_create_mode_creates_one_linked_task(mode):
    kantata = FakeKantata()
    result = sync(kantata, event(), route(mode))
    if mode == "update":
        assert result.action == "not linked"
        assert not any(c[0] == "POST story" for c in kantata.calls)
    else:
        assert (result.action, result.to_status) == ("created", "In Progress")
        assert ("POST story", "In Progress") in kantata.calls


def test_an_object_found_unlinked_is_not_looked_up_again_for_five_minutes_then_is():
    # Given an object no task is linked to, under tasks: update, and a worker's clock
    kantata = FakeKantata()
    now = [1000.0]
    tasks = TaskSync(unlinked=UnlinkedObjects(clock=lambda: now[0]))

    def lookups():
        return sum(1 for c in kantata.calls if c[0] == "GET stories")

    # When changes of it arrive within five minutes, only the first looks the task up
    assert tasks.sync(kantata, event(), route(), None, lambda: None).action == "not linked"
    now[0] += 299
    again = tasks.sync(kantata, event("In Review"), route(), None, lambda: None)
    assert (again.action, again.text) == (
        "not linked",
        "no Kantata task is linked to PROJ-12 (looked up 299 s ago)",
    )
    assert lookups() == 1
    # Then a task linked in Kantata meanwhile is found by the first change after five minutes
    kantata.stories["501"] = Story("501", "t", status="To Do", workspace_id="100", description="PROJ-12")
    now[0] += 1
    found = tasks.sync(kantata, event("In Review"), route(), None, lambda: None)
    assert (found.action, found.task_id, found.to_status) == ("updated", "501", "In Review")
    assert lookups() == 2


def test_create_mode_never_trusts_an_earlier_not_linked_and_other_objects_are_looked_up():
    kantata = FakeKantata()
    unlinked = UnlinkedObjects(clock=lambda: 0.0)
    tasks = TaskSync(unlinked=unlinked)
    tasks.sync(kantata, event(), route(), None, lambda: None)
    # Another object is not covered by the first one's answer
    other = dataclasses.replace(event(), ref="PROJ-13")
    tasks.sync(kantata, other, route(), None, lambda: None)
    assert [c for c in kantata.calls if c[0] == "GET stories"] == [
        ("GET stories", ["PROJ-12"]),
        ("GET stories", ["PROJ-13"]),
    ]
    # A route that creates tasks looks again (a lost create must be found) and creates one
    created = tasks.sync(kantata, event(), route("create"), None, lambda: None)
    assert created.action == "created"
    story_calls = [c for c in kantata.calls if "stor" in c[0]]
    assert story_calls[-2:] == [("GET stories", ["PROJ-12"]), ("POST story", "In Progress")]


def test_the_unlinked_cache_keeps_at_most_its_limit_dropping_the_oldest():
    unlinked = UnlinkedObjects(clock=lambda: 0.0, limit=2)
    a, b, c = (dataclasses.replace(event(), ref=r) for r in ("A-1", "A-2", "A-3"))
    for ev in (a, b, c):
        unlinked.add(ev)
    assert [unlinked.age(ev) for ev in (a, b, c)] == [None, 0.0, 0.0]


def test_a_deleted_tracker_object_never_creates_a_task():
    kantata = FakeKantata()
    result = sync(kantata, event(action=Action.DELETED), route("create"))
    assert result.action == "not linked"
    assert not any(c[0] == "POST story" for c in kantata.calls)


@pytest.mark.parametrize(
    ("on_delete", "sent", "after"), [("leave", None, "In Review"), ("complete", "Done", "Done")]
)
def test_a_deletion_leaves_the_status_or_completes_the_task_as_the_route_says(on_delete, sent, after):
    kantata = FakeKantata()
    kantata.stories["501"] = Story("501", "t", status="In Review", workspace_id="100", description="PROJ-12")
    cached = TaskLink("501", "100", {"status": "In Review"})
    result = sync(kantata, event(action=Action.DELETED), route(on_delete=on_delete), cached)
    assert kantata.calls[-1] == ("PUT story", sent)
    assert kantata.stories["501"].status == after
    assert result.action == "updated"


def test_a_status_with_no_counterpart_leaves_the_task_alone_and_says_why():
    kantata = FakeKantata()
    cached = TaskLink("501", "100", {"status": "In Review"})
    result = sync(kantata, event("Weird", "unheard-of"), route(), cached)
    assert result.action == "left alone"
    assert "no 'Weird' in set 'PROJ workflow'" in result.text
    assert not any(c[0] == "PUT story" for c in kantata.calls)


def test_routes_take_task_settings_and_links_have_their_own_defaults():
    config = build_config(
        {
            "routes": [
                {
                    "tracker": "jira",
                    "project": "PROJ",
                    "workspace_id": "100",
                    "tasks": "create",
                    "task_statuses": {"Code Review": "In Review"},
                    "on_delete": "complete",
                }
            ],
            "links": {"max_age_seconds": 60, "tasks": "update"},
        }
    )
    (r,) = config.routes
    assert r.tasks == TaskSettings("create", {"code review": "In Review"}, "complete")
    assert (config.links.max_age_seconds, config.links.tasks.mode) == (60, "update")


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"tasks": "sometimes"}, "routes[0].tasks: must be one of off, update, create"),
        ({"tasks": "update", "on_delete": "archive"}, "routes[0].on_delete: must be one of leave, complete"),
        ({"tasks": "update", "task_statuses": ["x"]}, "routes[0].task_statuses: must map"),
        ({"task_statuses": {"a": "b"}}, "routes[0].tasks: task_statuses and on_delete need tasks"),
    ],
)
def test_bad_task_settings_are_named_by_key(extra, problem):
    from kantata_bridge.mapping.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        build_config({"routes": [{"tracker": "jira", "project": "PROJ", "workspace_id": "1", **extra}]})
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems
