"""Loading and validating the catalog file: every problem named by its key and why."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kantata_bridge.catalog.config import (
    CatalogConfigError,
    load_config,
    parse_config,
    parse_config_text,
    render_config_yaml,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "catalog.example.yaml"


def one_set(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": "PROJ",
        "statuses": [{"name": "To Do", "category": "not started"}, {"name": "Done", "category": "completed"}],
    }
    item.update(overrides)
    return {"version": 1, "sets": [item]}


def problems_of(data: Any) -> tuple[str, ...]:
    with pytest.raises(CatalogConfigError) as caught:
        parse_config(data)
    return caught.value.problems


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    assert [s.name for s in config.sets] == ["PROJ workflow", "acme/web board"]
    in_review = config.sets[0].statuses[4]
    assert (in_review.name, in_review.category, in_review.previous_names) == (
        "In Review",
        "started",
        ("Code Review",),
    )
    assert len(config.sets[0].statuses) >= 8


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([], "the top level must be a mapping"),
        ({"sets": []}, "sets: must be a non-empty list"),
        ({"version": 2, "sets": one_set()["sets"]}, "version: only version 1 is supported; got 2"),
        ({"sets": [{"statuses": []}]}, "sets[0].name: must be a non-empty string; got None"),
        (one_set(statuses=[]), "sets[0].statuses: must be a non-empty list"),
        (
            one_set(statuses=[{"name": "Doing", "category": "in progress"}]),
            "sets[0].statuses[0].category: must be one of 'not started', 'started', 'needs info', 'completed'; "
            "got 'in progress'",
        ),
        (
            one_set(
                statuses=[
                    {"name": "Done", "category": "completed"},
                    {"name": "DONE", "category": "completed"},
                ]
            ),
            "sets[0].statuses[1].name: 'DONE' clashes (case-insensitively) with sets[0].statuses[0].name",
        ),
        (
            one_set(
                statuses=[
                    {"name": "Doing", "category": "started"},
                    {"name": "In Progress", "category": "started", "previous_names": ["doing"]},
                ]
            ),
            "sets[0].statuses[1].previous_names: 'doing' clashes (case-insensitively) with sets[0].statuses[0].name",
        ),
        (
            one_set(statuses=[{"name": " To Do", "category": "not started"}]),
            "must not start or end with spaces",
        ),
        (one_set(colour="red"), "sets[0]: unknown key(s) colour"),
        (one_set(tracker="svn"), "sets[0].tracker: must be one of jira, github, gitlab, linear; got 'svn'"),
        (
            one_set(workspaces=[12, "x"]),
            "sets[0].workspaces[1]: must be a positive integer workspace id; got 'x'",
        ),
        (one_set(workspaces=[12, 12]), "sets[0].workspaces[1]: workspace 12 is listed twice"),
        (one_set(account_default="yes"), "sets[0].account_default: must be true or false; got 'yes'"),
    ],
)
def test_invalid_config_names_the_key_and_why(data: Any, expected: str) -> None:
    assert any(expected in p for p in problems_of(data)), problems_of(data)


def test_set_names_are_unique_across_the_catalog() -> None:
    data = one_set()
    data["sets"].append(dict(data["sets"][0], previous_names=["Other"]))
    assert any("sets[1].name: 'PROJ' is already used by sets[0]" in p for p in problems_of(data))


def test_only_one_account_default_and_one_set_per_workspace() -> None:
    data = one_set(account_default=True, workspaces=[5])
    data["sets"].append(dict(data["sets"][0], name="Other"))
    problems = problems_of(data)
    assert any("sets[1].account_default: only one set can be the account default" in p for p in problems)
    assert any("sets[1].workspaces: workspace 5 is also given to sets[0]" in p for p in problems)


def a_set(name: str, category: str = "completed", **overrides: Any) -> dict[str, Any]:
    return {"name": name, "statuses": [{"name": "Done", "category": category}], **overrides}


INVALID_A = a_set("A", category="closed")  # an invalid status category
A_PROBLEM = ".statuses[0].category: must be one of"


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        ([INVALID_A, a_set("B"), a_set("B")], "sets[2].name: 'B' is already used by sets[1]"),
        ([INVALID_A, a_set("A")], "sets[1].name: 'A' is already used by sets[0]"),
        (
            [dict(INVALID_A, account_default=True), a_set("B", account_default=True)],
            "sets[1].account_default: only one set can be the account default (sets[0] already is)",
        ),
        (
            [dict(INVALID_A, workspaces=[7]), a_set("B", workspaces=[7])],
            "sets[1].workspaces: workspace 7 is also given to sets[0]",
        ),
        (
            [a_set("B", workspaces=[7]), dict(INVALID_A, workspaces=[7])],
            "sets[1].workspaces: workspace 7 is also given to sets[0]",
        ),
        (
            [INVALID_A, a_set("B"), a_set("C", previous_names=["B"])],
            "sets[2].previous_names[0]: 'B' is already used by sets[1]",
        ),
    ],
    ids=[
        "duplicate-after-invalid",
        "clash-with-invalid",
        "default",
        "workspace",
        "workspace-later",
        "previous",
    ],
)
def test_clashes_are_reported_with_the_right_key_when_a_set_is_invalid(
    sets: list[dict[str, Any]], expected: str
) -> None:
    # Given a catalog whose set A is invalid (every problem at once, each with its key)
    problems = problems_of({"version": 1, "sets": sets})
    # Then A's own problem and the clash are both reported, each with its own key
    assert any(A_PROBLEM in p for p in problems), problems
    assert any(expected in p for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    data = one_set(tracker="x", statuses=[{"name": "", "category": "nope"}])
    assert len(problems_of(data)) == 3


def test_yaml_syntax_error_gives_the_position() -> None:
    with pytest.raises(CatalogConfigError, match=r"line \d+, column \d+: expected"):
        parse_config_text("sets:\n  - name: [unclosed\n", source="catalog.yaml")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogConfigError, match="cannot read the file"):
        load_config(tmp_path / "absent.yaml")


def test_rendered_yaml_reads_back_to_the_same_config() -> None:
    config = load_config(EXAMPLE)
    assert parse_config_text(render_config_yaml(config)) == config


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    ["sets", "name", "statuses", "category", "previous_names", "workspaces", "version"]
                )
                | st.text(max_size=5),
                inner,
                max_size=4,
            )
        ),
        max_leaves=20,
    )
)
def test_any_input_loads_or_fails_with_a_config_error(data: Any) -> None:
    try:
        parse_config(data)
    except CatalogConfigError as exc:
        problems = exc.problems
    else:
        problems = ("(valid)",)
    assert problems


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"sets: [{name: \xff}]", "not UTF-8 text (byte 14)"),
        (b"[" * 5000, "nested too deeply"),
    ],
    ids=["not-utf8", "deeply-nested"],
)
def test_unreadable_content_is_a_config_error(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_bytes(content)
    with pytest.raises(CatalogConfigError, match=re.escape(expected)):
        load_config(path)
