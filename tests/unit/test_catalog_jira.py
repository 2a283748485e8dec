"""A Jira workflow-statuses export → a desired task status set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kantata_bridge.catalog.config import CatalogConfigError
from kantata_bridge.catalog.jira import (
    JiraExportError,
    NeedsInfoRules,
    set_from_jira_export,
    statuses_from_jira_export,
)

EXPORT = Path(__file__).resolve().parents[2] / "events" / "payloads" / "jira-project-statuses.json"


def issue_type(*statuses: tuple[str, str]) -> dict[str, Any]:
    return {
        "id": "1",
        "name": "Task",
        "statuses": [{"name": n, "statusCategory": {"key": k}} for n, k in statuses],
    }


def test_export_fixture_maps_categories_dedupes_and_keeps_first_seen_order() -> None:
    desired = set_from_jira_export(json.loads(EXPORT.read_text()), set_name="PROJ workflow", project="PROJ")
    assert [(s.name, s.category) for s in desired.statuses] == [
        ("To Do", "not started"),
        ("Backlog", "not started"),
        ("Selected for Development", "not started"),
        ("In Progress", "started"),
        ("In Review", "started"),
        ("Blocked", "needs info"),
        ("QA", "started"),
        ("Done", "completed"),
        ("Won't Do", "completed"),
        ("Waiting for customer", "needs info"),
    ]
    assert (desired.tracker, desired.workflow) == ("jira", "PROJ")


@pytest.mark.parametrize(
    ("rules", "name", "expected"),
    [
        (["waiting for"], "Waiting For Customer", "needs info"),
        (["blocked"], "Blocked by vendor", "needs info"),
        (["/^blocked$/"], "Unblocked", "started"),
        (["/^blocked$/"], "BLOCKED", "needs info"),
        ([], "Blocked", "started"),
    ],
)
def test_needs_info_rules_are_case_insensitive_substrings_or_regexes(
    rules: list[str], name: str, expected: str
) -> None:
    (status,) = statuses_from_jira_export([issue_type((name, "indeterminate"))], NeedsInfoRules.parse(rules))
    assert status.category == expected


def test_duplicate_names_differing_in_case_keep_the_first() -> None:
    export = [issue_type(("Done", "done")), issue_type(("DONE", "done"), ("QA", "indeterminate"))]
    statuses = statuses_from_jira_export(export, NeedsInfoRules.parse([]))
    assert [s.name for s in statuses] == ["Done", "QA"]


@pytest.mark.parametrize(
    ("export", "message"),
    [
        ({"values": []}, "expected the JSON list"),
        ([{"name": "Task"}], "[0]: an issue type must have a 'statuses' list"),
        ([issue_type(("", "new"))], "[0].statuses[0].name: must be a non-empty string"),
        ([issue_type(("Odd", "undefined"))], "[0].statuses[0].statusCategory.key: must be one of new"),
        ([{"statuses": []}], "the export has no statuses"),
    ],
)
def test_malformed_export_is_refused_with_where_and_why(export: Any, message: str) -> None:
    with pytest.raises(JiraExportError) as caught:
        statuses_from_jira_export(export, NeedsInfoRules.parse([]))
    assert message in str(caught.value)


def test_invalid_regex_rule_is_refused() -> None:
    with pytest.raises(JiraExportError, match="not a valid regex"):
        NeedsInfoRules.parse(["/(unclosed/"])


def test_blank_set_name_is_a_config_error() -> None:
    with pytest.raises(CatalogConfigError, match=r"sets\[0\]\.name"):
        set_from_jira_export([issue_type(("To Do", "new"))], set_name=" ")
