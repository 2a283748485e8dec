"""Routing/rules config: parsing, defaults and validation errors that name the bad key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kantata_bridge.mapping.config import DEFAULT_RULES, ConfigError, build_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "routing.example.yaml"


def route(**over):
    base = {"tracker": "github", "repository": "acme/webapp", "workspace_id": "123"}
    base.update(over)
    return base


def test_documented_example_parses_and_its_rules_are_the_defaults():
    config = parse_config(EXAMPLE.read_text())
    assert [r.tracker for r in config.routes] == ["github"] * 3 + ["jira"] * 2 + ["gitlab"] * 2 + ["linear"]
    assert config.rules == DEFAULT_RULES


def test_json_document_and_yaml_document_give_the_same_config():
    doc = {"version": 1, "routes": [route(labels=["client-a"])]}
    import yaml

    assert parse_config(json.dumps(doc)) == parse_config(yaml.safe_dump(doc))


def test_numeric_workspace_id_is_accepted_as_digits():
    assert build_config({"routes": [route(workspace_id=41234)]}).routes[0].workspace_id == "41234"


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        (
            {"routes": [route(), route(), route(workspace_id="abc")]},
            "routes[2].workspace_id: must be a string of digits",
        ),
        (
            {"routes": [route(tracker="svn")]},
            "routes[0].tracker: must be one of github, jira, gitlab, linear",
        ),
        (
            {"routes": [route(tracker="gitlab")]},
            "routes[0].repository: not used for tracker gitlab; use project",
        ),
        (
            {"routes": [{"tracker": "gitlab", "project": "checkout", "workspace_id": "1"}]},
            "routes[0].project: must be a project path 'group/project'",
        ),
        (
            {"routes": [{"tracker": "gitlab", "project": "acme//checkout", "workspace_id": "1"}]},
            "routes[0].project: must be a project path 'group/project'",
        ),
        (
            {"routes": [{"tracker": "gitlab", "project": "acme/*/checkout", "workspace_id": "1"}]},
            "routes[0].project: a wildcard must be the whole last segment",
        ),
        (
            {"routes": [{"tracker": "gitlab", "project": "acme/check*", "workspace_id": "1"}]},
            "routes[0].project: a wildcard must be the whole last segment",
        ),
        (
            {
                "routes": [
                    {"tracker": "gitlab", "project": "acme/x", "components": ["c"], "workspace_id": "1"}
                ]
            },
            "routes[0].components: gitlab has no components",
        ),
        ({"routes": [{"tracker": "linear", "workspace_id": "1"}]}, "routes[0].team: required"),
        (
            {"routes": [{"tracker": "linear", "team": "ENG-1", "workspace_id": "1"}]},
            "routes[0].team: must be a Linear team key",
        ),
        (
            {"routes": [{"tracker": "linear", "project": "ENG", "workspace_id": "1"}]},
            "routes[0].project: not used for tracker linear; use team",
        ),
        ({"routes": [route(repository="webapp")]}, "routes[0].repository: must be 'owner/repo' or 'owner/*'"),
        ({"routes": [{"tracker": "jira", "workspace_id": "1"}]}, "routes[0].project: required"),
        ({"routes": [route(components=["x"])]}, "routes[0].components: github has no components"),
        ({"routes": [route(labels=[""])]}, "routes[0].labels: must be a list of non-empty strings"),
        ({"routes": [route(colour="red")]}, "routes[0].colour: unknown key"),
        ({"routes": "all"}, "routes: must be a list"),
        ({"routes": [], "extra": 1}, "extra: unknown key"),
        ({"routes": [], "version": 2}, "version: must be 1"),
        (
            {"routes": [], "rules": {"default_color": "blue"}},
            "rules.default_color: must be one of green, yellow, red",
        ),
        (
            {"routes": [], "rules": {"colors": [{"when": {"label": ["x"]}, "color": "pink"}]}},
            "rules.colors[0].color: must be one of",
        ),
        (
            {"routes": [], "rules": {"colors": [{"when": {}, "color": "red"}]}},
            "rules.colors[0].when: must be a non-empty",
        ),
        (
            {"routes": [], "rules": {"colors": [{"when": {"mood": ["sad"]}, "color": "red"}]}},
            "rules.colors[0].when.mood: unknown condition",
        ),
        (
            {"routes": [], "rules": {"colors": [{"when": {"overdue": "yes"}, "color": "red"}]}},
            "rules.colors[0].when.overdue: must be true or false",
        ),
        (
            {"routes": [], "rules": {"description": "{title} {secret}"}},
            "rules.description: unknown field {secret}",
        ),
        ({"routes": [], "rules": {"description": "{title.__class__}"}}, "unknown field {title.__class__}"),
        ({"routes": [], "rules": {"description": "{title!r}"}}, "may not have a format spec or conversion"),
        ({"routes": [], "rules": {"description": "{title"}}, "rules.description: bad template"),
        (
            {"routes": [], "rules": {"message_limit": 5000}},
            "rules.message_limit: must be an integer from 16 to 255",
        ),
        (
            {"routes": [], "rules": {"details": [{"category": "Mood", "color": "red"}]}},
            "rules.details[0].category: must be one of Scope, Budget, Schedule, Client",
        ),
        (
            {
                "routes": [],
                "rules": {
                    "details": [{"category": "Scope", "color": "red"}, {"category": "Scope", "color": "red"}]
                },
            },
            "rules.details[1].category: Scope appears more than once",
        ),
        ({"routes": [], "rules": {"details": [{"category": "Scope"}]}}, "rules.details[0]: needs 'color'"),
        (
            {"routes": [], "rules": {"details": [{"category": "Scope", "color": "teal"}]}},
            "rules.details[0].color: must be one of",
        ),
    ],
)
def test_invalid_config_error_names_the_key_and_why(doc, problem):
    with pytest.raises(ConfigError) as info:
        build_config(doc)
    assert any(problem in p for p in info.value.problems), info.value.problems
    assert problem in str(info.value)


@pytest.mark.parametrize(
    ("tracker", "key", "source"),
    [
        ("gitlab", "project", "acme/checkout"),
        ("gitlab", "project", "acme/platform/checkout"),
        ("gitlab", "project", "acme/*"),
        ("gitlab", "project", "acme/platform/**"),
        ("linear", "team", "ENG"),
        ("linear", "team", "web2"),
    ],
)
def test_gitlab_and_linear_sources_are_accepted(tracker, key, source):
    [parsed] = build_config({"routes": [{"tracker": tracker, key: source, "workspace_id": "7"}]}).routes
    assert (parsed.tracker, parsed.source) == (tracker, source)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        build_config(
            {"routes": [route(workspace_id="x"), route(tracker="svn")], "rules": {"default_color": "no"}}
        )
    assert len(info.value.problems) == 3


@pytest.mark.parametrize("text", ["routes: [", "{not json", "- just\n- a list", ""])
def test_unparseable_or_wrongly_shaped_document_is_a_config_error(text):
    with pytest.raises(ConfigError):
        parse_config(text, "routing.yaml")


def test_custom_rules_replace_only_the_keys_given():
    config = build_config(
        {
            "routes": [route()],
            "rules": {"colors": [{"when": {"label": ["urgent"]}, "color": "red"}], "due_soon_days": 7},
        }
    )
    assert len(config.rules.colors) == 1
    assert config.rules.due_soon_days == 7
    assert config.rules.details == DEFAULT_RULES.details
    assert config.rules.description == DEFAULT_RULES.description


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=12),
        lambda c: (
            st.lists(c, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "routes",
                        "rules",
                        "tracker",
                        "repository",
                        "project",
                        "team",
                        "workspace_id",
                        "labels",
                        "colors",
                        "when",
                        "color",
                        "details",
                        "category",
                        "description",
                        "x",
                    ]
                ),
                c,
                max_size=5,
            )
        ),
        max_leaves=25,
    )
)
def test_any_document_is_either_a_config_or_a_config_error(doc):
    problems: tuple[str, ...] = ()
    try:
        config = build_config(doc)
    except ConfigError as exc:
        problems = exc.problems
    if problems:
        assert all(": " in p for p in problems)  # each names a path and why
    else:
        assert all(r.workspace_id.isdigit() for r in config.routes)
