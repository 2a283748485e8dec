"""Links found in Kantata (mapping.links): what a link names, how sources compare, and the worker's cache of
``workspaces_for`` over a fake client and an injected clock."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kantata_bridge.kantata.errors import NotFoundError, RateLimitError
from kantata_bridge.kantata.models import ExternalReference, Workspace
from kantata_bridge.mapping.config import ROUTE_SOURCES
from kantata_bridge.mapping.links import (
    GITHUB_ORGANIZATION,
    LINK_MODELS,
    LinkError,
    LinkTarget,
    WorkspaceLinks,
    link_target,
    lookup_targets,
    read_links,
    source_url,
    target_of,
)
from kantata_bridge.mapping.routing import SOURCE_MATCHERS

# ---------------------------------------------------------------------------------------------- pure parts


def test_every_routable_tracker_has_a_link_model_named_like_its_route_key():
    assert set(LINK_MODELS) == set(ROUTE_SOURCES)
    assert {t: m for t, m in LINK_MODELS.items()} == {t: s.key for t, s in ROUTE_SOURCES.items()}


@pytest.mark.parametrize(
    ("tracker", "source", "model", "ref", "shown"),
    [
        ("github", "acme/webapp", "repository", "acme/webapp", "acme/webapp"),
        ("github", "  Acme/WebApp ", "repository", "acme/webapp", "acme/webapp"),
        ("github", "acme/web.app_2-x", "repository", "acme/web.app_2-x", "acme/web.app_2-x"),
        ("github", "acme/*", GITHUB_ORGANIZATION, "acme", "acme/*"),
        ("github", "ACME", GITHUB_ORGANIZATION, "acme", "acme/*"),
        ("jira", "proj", "project", "PROJ", "PROJ"),
        ("jira", "OPS_2", "project", "OPS_2", "OPS_2"),
        ("gitlab", "Acme/Platform/Checkout", "project", "acme/platform/checkout", "acme/platform/checkout"),
        ("gitlab", "acme/web.site", "project", "acme/web.site", "acme/web.site"),
        ("linear", "eng", "team", "ENG", "ENG"),
    ],
)
def test_a_source_names_one_link_in_one_spelling(tracker, source, model, ref, shown):
    target = link_target(tracker, source)
    assert target == LinkTarget(tracker, model, ref)
    assert target.source == shown


@pytest.mark.parametrize(
    ("tracker", "source", "words"),
    [
        ("svn", "trunk", "unknown tracker 'svn'"),
        ("github", "", "must not be empty"),
        ("github", "acme/", "must be 'owner/repo' or 'owner/*'"),
        ("github", "/webapp", "must be 'owner/repo' or 'owner/*'"),
        ("github", "acme/web/app", "must be 'owner/repo' or 'owner/*'"),
        ("github", "acme/web app", "must be 'owner/repo' or 'owner/*'"),
        ("github", "-acme", "is not a GitHub owner"),
        ("github", "acme/**", "must be 'owner/repo' or 'owner/*'"),
        ("jira", "PROJ-12", "is not a Jira project key"),
        ("jira", "1PROJ", "is not a Jira project key"),
        ("gitlab", "project", "must be a project path"),
        ("gitlab", "acme/*", "a link names one GitLab project"),
        ("gitlab", "acme/**", "a link names one GitLab project"),
        ("gitlab", "acme//x", "must be a project path"),
        ("gitlab", "acme/we b", "must be a project path"),
        ("linear", "ENG-1", "is not a Linear team key"),
        ("linear", "   ", "must not be empty"),
    ],
)
def test_a_source_that_cannot_be_linked_is_refused_with_the_reason(tracker, source, words):
    with pytest.raises(LinkError, match=words.replace("*", r"\*").replace("(", r"\(")):
        link_target(tracker, source)


@pytest.mark.parametrize(
    ("tracker", "project", "expected"),
    [
        (
            "github",
            "Acme/WebApp",
            [("repository", "acme/webapp"), (GITHUB_ORGANIZATION, "acme")],
        ),
        ("jira", "PROJ", [("project", "PROJ")]),
        ("gitlab", "acme/platform/checkout", [("project", "acme/platform/checkout")]),
        ("linear", "ENG", [("team", "ENG")]),
        ("github", "acme", []),  # no event comes from an organisation alone
        ("github", "not a repo", []),
        ("svn", "trunk", []),
    ],
)
def test_an_event_looks_up_the_most_specific_link_first(tracker, project, expected):
    assert [(t.service_model, t.ref) for t in lookup_targets(tracker, project)] == expected


def ref(
    workspace_id: int | None,
    service_name: str = "github",
    service_model: str = "repository",
    service_model_ref: str = "acme/webapp",
    *,
    ref_id: str = "900",
    subject_type: str = "Workspace",
    workspace: Workspace | None = None,
    subject_included: bool = True,
    external_link: str | None = None,
) -> ExternalReference:
    return ExternalReference(
        id=ref_id,
        subject_type=subject_type,
        subject_id=workspace_id,
        service_name=service_name,
        service_model=service_model,
        service_model_ref=service_model_ref,
        status="successful",
        external_link=external_link,
        subject_ref=("workspaces", str(workspace_id)) if subject_included else None,
        workspace=workspace,
    )


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (ref(7), LinkTarget("github", "repository", "acme/webapp")),
        (ref(7, service_model_ref="Acme/WebApp"), LinkTarget("github", "repository", "acme/webapp")),
        (
            ref(7, service_model=GITHUB_ORGANIZATION, service_model_ref="Acme"),
            LinkTarget("github", "organization", "acme"),
        ),
        (ref(7, "jira", "project", "proj"), LinkTarget("jira", "project", "PROJ")),
        (ref(7, "linear", "team", "ENG"), LinkTarget("linear", "team", "ENG")),
        (ref(7, "gitlab", "project", "g/s/p"), LinkTarget("gitlab", "project", "g/s/p")),
        (ref(7, service_model="issue", service_model_ref="acme/webapp#1"), None),  # not a link model
        (ref(7, "jira", "issue", "PROJ-1"), None),
        (ref(7, "jira", "repository", "PROJ"), None),  # another tracker's model
        (ref(7, service_model=GITHUB_ORGANIZATION, service_model_ref="acme/webapp"), None),
        (ref(7, "salesforce", "account", "001"), None),
        (ref(7, subject_type="Story"), None),
        (ref(7, service_model_ref="not a repo"), None),
    ],
)
def test_only_workspace_references_with_a_link_model_are_links(reference, expected):
    assert target_of(reference) == expected


def test_the_source_url_is_built_only_where_no_site_setting_is_needed():
    assert source_url(link_target("github", "acme/webapp")) == "https://github.com/acme/webapp"
    assert source_url(link_target("github", "acme/*")) == "https://github.com/acme"
    for tracker, source in (("jira", "PROJ"), ("gitlab", "g/p"), ("linear", "ENG")):
        assert source_url(link_target(tracker, source)) is None


_GITHUB_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,8}", fullmatch=True)
_REPO_NAME = st.from_regex(r"[A-Za-z0-9._-]{1,10}", fullmatch=True)
_KEY = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,6}", fullmatch=True)


def _case_variants(text: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(
        lambda flips: "".join(c.swapcase() if f else c for c, f in zip(text, flips, strict=True))
    )


@given(data=st.data())
def test_two_spellings_name_the_same_link_exactly_when_the_routes_matcher_says_they_match(data):
    # The link's normalisation is the routes' case rule: a link written in one spelling routes an event in any
    # spelling the routing document would match, and only those.
    tracker = data.draw(st.sampled_from(list(LINK_MODELS)))
    if tracker == "github":
        source = data.draw(_GITHUB_NAME) + "/" + data.draw(_REPO_NAME)
    elif tracker == "gitlab":
        source = data.draw(_GITHUB_NAME) + "/" + data.draw(_GITHUB_NAME)
    else:
        source = data.draw(_KEY)
    other = data.draw(st.one_of(_case_variants(source), st.just(source + "x")))
    same_link = link_target(tracker, source) == link_target(tracker, other)
    assert same_link == SOURCE_MATCHERS[tracker](source, other)


# ---------------------------------------------------------------------------------------------- the cache


def ws(workspace_id: str, title: str = "W", *, archived: bool = False) -> Workspace:
    return Workspace(id=workspace_id, title=title, archived=archived)


@dataclass
class FakeKantata:
    """Answers GET /external_references from ``refs`` with Kantata's filters, and counts the calls."""

    refs: list[ExternalReference] = field(default_factory=list)
    workspaces: dict[str, Workspace] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    fail_with: Exception | None = None

    def list_external_references(
        self,
        subject_type: str,
        *,
        subject_id: int | None = None,
        service_name: str | None = None,
        service_model: str | None = None,
        service_model_ref: str | None = None,
        include: Sequence[str] = (),
    ) -> Iterable[ExternalReference]:
        query = {
            "subject_type": subject_type,
            "subject_id": subject_id,
            "service_name": service_name,
            "service_model": service_model,
            "service_model_ref": service_model_ref,
        }
        self.calls.append({**query, "include": tuple(include)})
        if self.fail_with is not None:
            raise self.fail_with
        return [
            r
            for r in self.refs
            if all(value is None or str(getattr(r, name)) == str(value) for name, value in query.items())
        ]

    def get_workspace(self, workspace_id: str | int, *, include: Sequence[str] = ()) -> Workspace:
        self.calls.append({"get_workspace": str(workspace_id)})
        found = self.workspaces.get(str(workspace_id))
        if found is None or found.archived:
            raise NotFoundError("Kantata GET /workspaces/x returned 404", status=404)
        return found


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def links_over(fake: FakeKantata, clock: Clock, **kwargs: Any) -> tuple[WorkspaceLinks, list[int]]:
    built: list[int] = []

    def client() -> FakeKantata:
        built.append(1)
        return fake

    return WorkspaceLinks(client, clock=clock, **kwargs), built


def test_the_lookup_is_one_filtered_reference_list_with_the_workspaces_side_loaded(clock):
    fake = FakeKantata([ref(41, workspace=ws("41"))])
    links, _ = links_over(fake, clock)

    assert links.workspaces_for("github", "acme/webapp") == ("41",)
    assert fake.calls == [
        {
            "subject_type": "Workspace",
            "subject_id": None,
            "service_name": "github",
            "service_model": "repository",
            "service_model_ref": "acme/webapp",
            "include": ("subject",),
        }
    ]


def test_answers_are_kept_for_their_lifetime_and_asked_again_at_its_end(clock):
    fake = FakeKantata([ref(41, workspace=ws("41"))])
    links, built = links_over(fake, clock, max_age_seconds=300)

    assert links.workspaces_for("github", "acme/webapp") == ("41",)
    clock.now += 299.9
    assert links.workspaces_for("github", "ACME/WebApp") == ("41",)  # same source, any spelling: cached
    assert len(fake.calls) == 1
    assert len(built) == 1  # the client is fetched only when Kantata is asked
    # A link removed in Kantata meanwhile is seen once the answer is 300 s old
    fake.refs.clear()
    clock.now += 0.1
    assert links.workspaces_for("github", "acme/webapp") == ()
    assert [c["service_model"] for c in fake.calls[1:]] == ["repository", "organization"]


def test_no_link_is_an_answer_too_and_is_kept(clock):
    fake = FakeKantata()
    links, _ = links_over(fake, clock)

    assert links.workspaces_for("jira", "PROJ") == ()
    assert links.workspaces_for("jira", "proj") == ()
    clock.now += 299
    assert links.workspaces_for("jira", "PROJ") == ()
    assert len(fake.calls) == 1
    # A link made in Kantata is seen when the empty answer expires
    fake.refs.append(ref(5, "jira", "project", "PROJ", workspace=ws("5")))
    clock.now += 1
    assert links.workspaces_for("jira", "PROJ") == ("5",)


def test_invalidate_drops_every_answer(clock):
    fake = FakeKantata([ref(41, workspace=ws("41"))])
    links, _ = links_over(fake, clock)
    links.workspaces_for("github", "acme/webapp")
    fake.refs = [ref(42, workspace=ws("42"))]

    links.invalidate()

    assert links.workspaces_for("github", "acme/webapp") == ("42",)
    assert len(fake.calls) == 2


def test_a_lifetime_of_zero_asks_every_time(clock):
    fake = FakeKantata([ref(41, workspace=ws("41"))])
    links, _ = links_over(fake, clock, max_age_seconds=0)
    links.workspaces_for("github", "acme/webapp")
    links.workspaces_for("github", "acme/webapp")
    assert len(fake.calls) == 2


@pytest.mark.parametrize("bad", [-1, float("nan")])
def test_a_negative_lifetime_is_refused(bad):
    with pytest.raises(ValueError, match="max_age_seconds"):
        WorkspaceLinks(lambda: FakeKantata(), max_age_seconds=bad)


def test_several_workspaces_come_in_ascending_numeric_id_order(clock):
    fake = FakeKantata(
        [
            ref(100, ref_id="1", workspace=ws("100")),
            ref(9, ref_id="2", workspace=ws("9")),
            ref(41, ref_id="3", workspace=ws("41")),
        ]
    )
    links, _ = links_over(fake, clock)
    assert links.workspaces_for("github", "acme/webapp") == ("9", "41", "100")


def test_a_repository_link_wins_over_the_organisation_link_whatever_the_ids(clock):
    fake = FakeKantata(
        [
            ref(1, service_model=GITHUB_ORGANIZATION, service_model_ref="acme", workspace=ws("1")),
            ref(50, workspace=ws("50")),
        ]
    )
    links, _ = links_over(fake, clock)

    assert links.workspaces_for("github", "acme/webapp") == ("50",)
    assert links.workspaces_for("github", "acme/api") == ("1",)  # no repository link: the organisation's
    assert links.workspaces_for("github", "other/api") == ()
    # The organisation's answer is shared by its repositories
    assert links.workspaces_for("github", "acme/docs") == ("1",)
    org_calls = [c for c in fake.calls if c.get("service_model") == GITHUB_ORGANIZATION]
    assert [c["service_model_ref"] for c in org_calls] == ["acme", "other"]


def test_workspaces_kantata_hides_or_marks_archived_route_nothing(clock):
    fake = FakeKantata(
        [
            ref(1, "jira", "project", "PROJ", ref_id="1", workspace=ws("1", archived=True)),
            ref(2, "jira", "project", "PROJ", ref_id="2", workspace=None),  # Kantata left it out
            ref(3, "jira", "project", "PROJ", ref_id="3", workspace=ws("3")),
        ]
    )
    links, _ = links_over(fake, clock)
    assert links.workspaces_for("jira", "PROJ") == ("3",)
    assert not any("get_workspace" in c for c in fake.calls)


def test_when_kantata_ignores_the_include_each_workspace_is_read_once(clock):
    # No subject_ref at all: the include was not honoured, so the workspace's own show route decides (404 for
    # an archived or missing one).
    fake = FakeKantata(
        [
            ref(1, "linear", "team", "ENG", ref_id="1", subject_included=False),
            ref(2, "linear", "team", "ENG", ref_id="2", subject_included=False),
        ],
        workspaces={"1": ws("1", archived=True), "2": ws("2")},
    )
    links, _ = links_over(fake, clock)
    assert links.workspaces_for("linear", "eng") == ("2",)
    assert [c["get_workspace"] for c in fake.calls if "get_workspace" in c] == ["1", "2"]


def test_references_that_are_not_exactly_the_link_are_ignored_even_if_kantata_returns_them(clock):
    # A looser filter on Kantata's side must not route anything to the wrong workspace.
    class Loose(FakeKantata):
        def list_external_references(self, subject_type: str, **kwargs: Any) -> Iterable[ExternalReference]:
            self.calls.append(kwargs)
            return self.refs

    fake = Loose(
        [
            ref(1, service_model_ref="acme/webapp2", workspace=ws("1")),
            ref(2, service_model="issue", service_model_ref="acme/webapp#1", workspace=ws("2")),
            ref(3, service_model_ref="ACME/WEBAPP", workspace=ws("3")),
        ]
    )
    links, _ = links_over(fake, clock)
    assert links.workspaces_for("github", "acme/webapp") == ("3",)


def test_a_kantata_error_propagates_and_nothing_is_cached(clock):
    fake = FakeKantata([ref(41, workspace=ws("41"))], fail_with=RateLimitError("Kantata GET 429", status=429))
    links, _ = links_over(fake, clock)

    with pytest.raises(RateLimitError) as raised:
        links.workspaces_for("github", "acme/webapp")
    assert raised.value.retryable

    fake.fail_with = None
    assert links.workspaces_for("github", "acme/webapp") == ("41",)


def test_a_source_no_link_can_name_asks_nothing(clock):
    fake = FakeKantata()
    links, built = links_over(fake, clock)
    assert links.workspaces_for("github", "not a repository") == ()
    assert links.workspaces_for("svn", "trunk") == ()
    assert fake.calls == []
    assert built == []


def test_the_cache_holds_at_most_max_entries_answers_dropping_the_oldest(clock):
    fake = FakeKantata()
    links, _ = links_over(fake, clock, max_entries=2)
    for key in ("A", "B", "C"):
        links.workspaces_for("jira", key)
    assert len(fake.calls) == 3
    links.workspaces_for("jira", "C")
    links.workspaces_for("jira", "B")
    assert len(fake.calls) == 3  # still cached
    links.workspaces_for("jira", "A")
    assert len(fake.calls) == 4  # the oldest went first


def test_read_links_lists_every_link_of_a_workspace_with_its_title_and_state():
    fake = FakeKantata(
        [
            ref(
                7,
                "jira",
                "project",
                "PROJ",
                ref_id="2",
                workspace=ws("7", "Alpha"),
                external_link="https://j/PROJ",
            ),
            ref(7, ref_id="1", workspace=ws("7", "Alpha")),
            ref(7, "salesforce", "account", "001", ref_id="3", workspace=ws("7", "Alpha")),
            ref(8, "jira", "project", "PROJ", ref_id="4", workspace=ws("8", "Old", archived=True)),
        ]
    )
    found = read_links(fake, workspace_id="7")
    assert [
        (link.target.tracker, link.target.source, link.reference_id, link.routable) for link in found
    ] == [
        ("github", "acme/webapp", "1", True),
        ("jira", "PROJ", "2", True),
    ]
    assert found[1].external_link == "https://j/PROJ"
    assert fake.calls[0]["subject_id"] == 7
    assert fake.calls[0]["service_name"] is None
    (old,) = read_links(fake, tracker="jira", workspace_id="8")
    assert not old.routable
