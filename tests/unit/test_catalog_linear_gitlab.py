"""Status catalogs from Linear workflow states and GitLab work item statuses / scoped labels (converters + CLI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kantata_bridge.catalog.config import parse_config_text
from kantata_bridge.catalog.gitlab import GitLabExportError, set_from_gitlab_export
from kantata_bridge.catalog.linear import LinearExportError, set_from_linear_export
from kantata_bridge_cli.main import main

PAYLOADS = Path(__file__).resolve().parents[2] / "events" / "payloads"
LINEAR_EXPORT = PAYLOADS / "linear-workflow-states.json"
GITLAB_LABELS = PAYLOADS / "gitlab-workflow-labels.json"
GITLAB_LIFECYCLES = PAYLOADS / "gitlab-work-item-lifecycles.json"


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def pairs(desired: Any) -> list[tuple[str, str]]:
    return [(s.name, s.category) for s in desired.statuses]


def test_linear_states_are_ordered_as_linear_shows_them_and_mapped_by_type() -> None:
    desired = set_from_linear_export(load(LINEAR_EXPORT), set_name="ENG workflow")
    assert (desired.name, desired.tracker, desired.workflow) == ("ENG workflow", "linear", "ENG")
    assert pairs(desired) == [
        ("Triage", "not started"),
        ("Backlog", "not started"),
        ("Todo", "not started"),
        ("In Progress", "started"),
        ("Blocked", "needs info"),  # a needs-info name rule wins over its "started" type
        ("In Review", "started"),
        ("Done", "completed"),
        ("Canceled", "completed"),
        ("Duplicate", "completed"),
    ]


def test_linear_export_of_several_teams_needs_a_team() -> None:
    export = load(LINEAR_EXPORT)
    nodes = export["data"]["workflowStates"]["nodes"]
    nodes.append({"name": "Shipped", "type": "completed", "position": 1, "team": {"key": "WEB"}})
    with pytest.raises(LinearExportError, match=r"several teams \(ENG, WEB\); give --team"):
        set_from_linear_export(export, set_name="x")
    web = set_from_linear_export(export, set_name="WEB workflow", team="web")
    assert (pairs(web), web.workflow) == ([("Shipped", "completed")], "WEB")


@pytest.mark.parametrize(
    ("export", "message"),
    [
        ({"data": {"issues": []}}, "expected the JSON answer of a workflowStates GraphQL query"),
        ([], "the export has no workflow states"),
        ({"errors": [{"message": "Authentication required"}]}, "GraphQL error: Authentication required"),
        ([{"name": "Doing", "type": "in_progress"}], "nodes[0].type: must be one of triage, backlog"),
        ([{"name": " ", "type": "started"}], "nodes[0].name: must be a non-empty string"),
        (["Todo"], "nodes[0]: must be an object"),
    ],
)
def test_bad_linear_export_names_the_problem(export: Any, message: str) -> None:
    with pytest.raises(LinearExportError) as err:
        set_from_linear_export(export, set_name="x")
    assert message in str(err.value)


def test_linear_team_not_in_the_export_is_named() -> None:
    with pytest.raises(LinearExportError, match=r"no states of team 'OPS' \(teams: ENG\)"):
        set_from_linear_export(load(LINEAR_EXPORT), set_name="x", team="OPS")


def test_gitlab_work_item_statuses_keep_the_lifecycle_order() -> None:
    desired = set_from_gitlab_export(load(GITLAB_LIFECYCLES), set_name="Acme statuses", workflow="acme")
    assert (desired.tracker, desired.workflow) == ("gitlab", "acme")
    assert pairs(desired) == [
        ("To do", "not started"),
        ("In progress", "started"),
        ("Waiting for customer", "needs info"),
        ("Done", "completed"),
        ("Won't do", "completed"),
        ("Duplicate", "completed"),
    ]


def test_gitlab_graphql_categories_in_upper_case_are_read_too() -> None:
    export = load(GITLAB_LIFECYCLES)
    for status in export["data"]["namespace"]["lifecycles"]["nodes"][0]["statuses"]:
        status["category"] = status["category"].upper()
    assert pairs(set_from_gitlab_export(export, set_name="x"))[0] == ("To do", "not started")


def test_gitlab_scoped_labels_become_statuses_named_as_the_worker_reports_them() -> None:
    desired = set_from_gitlab_export(
        load(GITLAB_LABELS), set_name="Checkout", workflow="acme/platform/checkout"
    )
    assert pairs(desired) == [
        ("ready", "not started"),
        ("in progress", "started"),
        ("in review", "started"),
        ("blocked", "needs info"),
        ("waiting for customer", "needs info"),
        ("done", "completed"),
    ]


def test_gitlab_label_prefix_and_rules_are_configurable() -> None:
    desired = set_from_gitlab_export(
        load(GITLAB_LABELS), set_name="x", label_prefix="priority::", started=["/^high$/"]
    )
    assert pairs(desired) == [("high", "started")]


@pytest.mark.parametrize(
    ("export", "options", "message"),
    [
        ({"issues": []}, {}, "expected the JSON list GET /projects/:id/labels"),
        ([{"name": "bug"}], {}, "no label in the export starts with 'workflow::'"),
        ([{"name": 7}], {}, "[0].name: must be a string"),
        ([{"name": "workflow::x"}], {"label_prefix": " "}, "the label prefix must not be empty"),
        ([{"name": "workflow::x"}], {"started": ["/([/"]}, "is not a valid regex"),
        ({"data": {"namespace": None}}, {}, "no data.namespace.lifecycles.nodes[]"),
        (
            {"errors": [{"message": "Field 'lifecycles' doesn't exist"}]},
            {},
            "GraphQL error: Field 'lifecycles'",
        ),
        (
            {
                "data": {
                    "namespace": {"lifecycles": {"nodes": [{"name": "A", "statuses": []}, {"name": "B"}]}}
                }
            },
            {},
            "several lifecycles (A, B); give --lifecycle",
        ),
        (
            {"data": {"namespace": {"lifecycles": {"nodes": [{"name": "A", "statuses": []}]}}}},
            {"lifecycle": "Bugs"},
            "no lifecycle named 'Bugs' (lifecycles: A)",
        ),
        (
            {
                "data": {
                    "namespace": {
                        "lifecycles": {
                            "nodes": [{"name": "A", "statuses": [{"name": "X", "category": "doing"}]}]
                        }
                    }
                }
            },
            {},
            "statuses[0].category: must be one of triage, to_do, in_progress, done, cancelled",
        ),
    ],
)
def test_bad_gitlab_export_names_the_problem(export: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(GitLabExportError) as err:
        set_from_gitlab_export(export, set_name="x", **options)
    assert message in str(err.value)


def test_gitlab_lifecycle_can_be_chosen_by_name() -> None:
    export = load(GITLAB_LIFECYCLES)
    nodes = export["data"]["namespace"]["lifecycles"]["nodes"]
    nodes.append({"name": "Incidents", "statuses": [{"name": "Investigating", "category": "IN_PROGRESS"}]})
    assert pairs(set_from_gitlab_export(export, set_name="x", lifecycle="incidents")) == [
        ("Investigating", "started")
    ]


@pytest.mark.parametrize(
    ("argv", "first_status"),
    [
        (
            ["from-linear", str(LINEAR_EXPORT), "--set-name", "ENG workflow", "--team", "ENG"],
            ("Triage", "not started"),
        ),
        (["from-gitlab", str(GITLAB_LABELS), "--set-name", "Checkout"], ("ready", "not started")),
        (["from-gitlab", str(GITLAB_LIFECYCLES), "--set-name", "Acme"], ("To do", "not started")),
    ],
)
def test_cli_prints_catalog_yaml_that_loads(
    capsys: pytest.CaptureFixture[str], argv: list[str], first_status: tuple[str, str]
) -> None:
    code = main(["catalog", *argv])
    captured = capsys.readouterr()
    assert (code, captured.err) == (0, "")
    [desired] = parse_config_text(captured.out).sets
    assert (desired.statuses[0].name, desired.statuses[0].category) == first_status


def test_cli_rules_replace_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["catalog", "from-gitlab", str(GITLAB_LABELS), "--set-name", "x", "--needs-info", "/^waiting/"]
    assert main(argv) == 0
    statuses = {s.name: s.category for s in parse_config_text(capsys.readouterr().out).sets[0].statuses}
    assert (statuses["blocked"], statuses["waiting for customer"]) == ("not started", "needs info")


@pytest.mark.parametrize(
    ("content", "argv", "message"),
    [
        (None, ["from-linear", "{missing}", "--set-name", "x"], "error: cannot read"),
        ("{not json", ["from-linear", "{file}", "--set-name", "x"], "is not JSON"),
        ('{"data": {}}', ["from-linear", "{file}", "--set-name", "x"], "workflowStates GraphQL query"),
        ("[]", ["from-gitlab", "{file}", "--set-name", "x"], "no label in the export starts with"),
        (
            '[{"name": "workflow::a"}]',
            ["from-gitlab", "{file}", "--set-name", " padded "],
            "invalid catalog configuration",
        ),
        ("\udcff", ["from-gitlab", "{file}", "--set-name", "x"], "error: "),
    ],
)
def test_cli_bad_input_exits_2_with_a_message_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, argv: list[str], message: str
) -> None:
    path = tmp_path / "export.json"
    if content is not None:
        path.write_bytes(content.encode("utf-8", "surrogateescape"))
    args = [a.replace("{file}", str(path)).replace("{missing}", str(tmp_path / "nope.json")) for a in argv]
    assert main(["catalog", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert "Traceback" not in captured.err


def test_cli_missing_set_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "from-linear", str(LINEAR_EXPORT)]) == 2
    assert "--set-name" in capsys.readouterr().err
