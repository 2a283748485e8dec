"""`kantata-bridge explain`: what the worker would do with a delivery, and what it did, writing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from kantata_bridge.worker import runtime
from kantata_bridge.worker.outcomes import Outcome, OutcomeKind, OutcomeStore
from kantata_bridge_cli.main import main
from moto import mock_aws

from tests.support.worker_env import STATE_TABLE, create_worker_resources, fake_aws_env

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "events" / "payloads"
EXAMPLE_CONFIG = ROOT / "config" / "routing.example.yaml"
GITHUB_HEADERS = [
    "--header",
    "X-GitHub-Event: issues",
    "--header",
    "X-GitHub-Delivery: d-42",
    "--header",
    "X-GitHub-Hook-ID: 7",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("STATE_TABLE", "ROUTING_CONFIG_FILE", "ROUTING_CONFIG_PARAMETER"):
        monkeypatch.delenv(name, raising=False)
    runtime.reset()
    yield
    runtime.reset()


def explain(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["explain", *argv])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else {})


def test_raw_delivery_shows_event_route_and_the_report_it_would_post(capsys):
    code, doc = explain(
        capsys,
        "--tracker", "github", *GITHUB_HEADERS,
        "--body", str(PAYLOADS / "github_issues_labeled_blocked.json"),
        "--config", str(EXAMPLE_CONFIG),
        "--today", "2026-11-22",
    )  # fmt: skip
    assert code == 0
    assert doc["delivery"]["dedupe_key"] == "github:7:d-42"
    assert doc["event"]["ref"] == "acme/webapp#42"
    assert doc["route"]["workspace_id"] == "41234568"
    report = doc["report"]["status_report"]
    assert report["color"] == "red"
    assert report["external_reference"]["service_model_ref"] == "acme/webapp#42"
    assert report["description"].endswith("kantata-bridge delivery: github:7:d-42")


@pytest.mark.parametrize(
    ("argv", "dedupe_key", "ref", "workspace", "first_line"),
    [
        (
            [
                "--tracker",
                "gitlab",
                "--header",
                "X-Gitlab-Event: Issue Hook",
                "--header",
                "Idempotency-Key: idem-12",
                "--body",
                str(PAYLOADS / "gitlab_issue_labeled_in_review.json"),
            ],
            "gitlab:-:idem-12",
            "acme/platform/checkout#12",
            "41234572",
            "Issue acme/platform/checkout#12 moved from in progress to in review: Payment form rejects valid Maestro cards",
        ),
        (
            [
                "--tracker",
                "gitlab",
                "--header",
                "X-Gitlab-Event: Merge Request Hook",
                "--header",
                "X-Gitlab-Event-UUID: uuid-34",
                "--body",
                str(PAYLOADS / "gitlab_merge_request_merged.json"),
            ],
            "gitlab:-:uuid-34",
            "acme/platform/checkout!34",
            "41234572",
            "Merge request acme/platform/checkout!34 merged: Accept Maestro card numbers of 12 to 19 digits",
        ),
        (
            [
                "--tracker",
                "linear",
                "--header",
                "Linear-Event: Issue",
                "--header",
                "Linear-Delivery: lin-1",
                "--body",
                str(PAYLOADS / "linear_issue_in_progress.json"),
            ],
            "linear:-:lin-1",
            "ENG-123",
            "41234574",
            "Issue ENG-123 moved to In Progress: Export invoices as CSV",
        ),
    ],
)
def test_gitlab_and_linear_deliveries_are_explained(capsys, argv, dedupe_key, ref, workspace, first_line):
    # Given a raw GitLab or Linear delivery and the documented example config
    # When explain reads it
    code, doc = explain(capsys, *argv, "--config", str(EXAMPLE_CONFIG), "--today", "2026-11-22")
    # Then it shows the dedupe key, the parsed event, the route and the report the worker would post
    assert code == 0
    assert doc["delivery"]["dedupe_key"] == dedupe_key
    assert doc["event"]["ref"] == ref
    assert doc["route"]["workspace_id"] == workspace
    report = doc["report"]["status_report"]
    assert report["description"].splitlines()[0] == first_line
    assert report["external_reference"]["service_model_ref"] == ref


def test_ignored_delivery_says_why(capsys):
    code, doc = explain(
        capsys,
        "--tracker",
        "github",
        "--header",
        "X-GitHub-Event: ping",
        "--body",
        str(PAYLOADS / "github_ping.json"),
        "--config",
        str(EXAMPLE_CONFIG),
    )
    assert code == 0
    assert doc["verdict"] == "skipped: ignored: github event 'ping' is not reported"


def test_raw_delivery_without_a_routing_config_is_bad_input_and_says_where_to_find_one(capsys):
    # Given no --config and neither ROUTING_CONFIG_FILE nor ROUTING_CONFIG_PARAMETER
    code = main(["explain", "--tracker", "jira", "--body", str(PAYLOADS / "jira_issue_updated_done.json")])
    # Then explain refuses (exit 2), prints nothing on stdout and points to the example config
    printed = capsys.readouterr()
    assert code == 2
    assert printed.out == ""
    assert printed.err.splitlines() == [
        "kantata-bridge: error: explain needs a routing config to show the route and report",
        "Pass --config FILE (e.g. --config config/routing.example.yaml) "
        "or set ROUTING_CONFIG_FILE / ROUTING_CONFIG_PARAMETER.",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tracker", "github", "--body", "/nonexistent.json"], "cannot read /nonexistent.json"),
        (
            ["--tracker", "github", "--header", "no colon", "--body", str(PAYLOADS / "github_ping.json")],
            "--header must look like",
        ),
        (["--tracker", "svn", "--body", str(PAYLOADS / "github_ping.json")], "unknown tracker 'svn'"),
        (["--tracker", "github"], "give --body FILE"),
        (["--tracker", "github", "--delivery-id", "x"], "--delivery-id needs the state table"),
    ],
)
def test_bad_input_is_a_clear_error_with_exit_code_2(capsys, argv, message):
    assert main(["explain", *argv]) == 2
    assert message in capsys.readouterr().err


def test_invalid_config_names_the_bad_key(capsys, tmp_path):
    bad = tmp_path / "routing.yaml"
    bad.write_text("routes:\n  - {tracker: github, repository: acme/webapp, workspace_id: abc}\n")
    code = main(
        [
            "explain",
            "--tracker",
            "jira",
            "--body",
            str(PAYLOADS / "jira_issue_created.json"),
            "--config",
            str(bad),
        ]
    )
    assert code == 2
    assert "routes[0].workspace_id: must be a string of digits" in capsys.readouterr().err


def test_delivery_id_shows_the_recorded_outcome_and_replays_a_parked_envelope(capsys, monkeypatch):
    fake_aws_env(monkeypatch.setenv)
    with mock_aws():
        create_worker_resources()
        ddb = boto3.client("dynamodb")
        from kantata_bridge_cli.explain import build_envelope

        body = (PAYLOADS / "jira_issue_created.json").read_bytes()
        env = build_envelope("jira", {"x-atlassian-webhook-identifier": "w-1"}, body)
        OutcomeStore(STATE_TABLE, ddb).put(
            Outcome(
                dedupe_key=env.dedupe_key,
                kind=OutcomeKind.PARKED,
                reason="kantata: 422 workspace_id: not found",
                recorded_at="2026-11-25T00:00:00+00:00",
                object_key="jira:issue:PROJ-12",
                envelope=env.to_message(),
            )
        )
        before = ddb.scan(TableName=STATE_TABLE)["Items"]
        code, doc = explain(
            capsys,
            "--tracker",
            "jira",
            "--delivery-id",
            "w-1",
            "--state-table",
            STATE_TABLE,
            "--config",
            str(EXAMPLE_CONFIG),
        )
        assert code == 0
        assert doc["outcome"]["outcome"] == "parked"
        assert "envelope" not in doc["outcome"]
        assert doc["replay"]["route"]["workspace_id"] == "41234570"
        assert [o["dedupe_key"] for o in doc["object_history"]] == ["jira:-:w-1"]
        # explain writes nothing
        assert ddb.scan(TableName=STATE_TABLE)["Items"] == before
        code, doc = explain(
            capsys, "--tracker", "jira", "--delivery-id", "unknown", "--state-table", STATE_TABLE
        )
        assert code == 1
        assert doc["outcome"] is None
