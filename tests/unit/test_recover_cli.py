"""`kantata-bridge recover github` and `kantata-bridge reconcile jira`: bad input is refused with exit 2 and a
plain message on stderr (never a traceback); runs print data on stdout (``--json``: only JSON)."""

from __future__ import annotations

import json

import boto3
import pytest
from kantata_bridge_cli.main import main as cli
from moto import mock_aws

from tests.support.worker_env import create_worker_resources, fake_aws_env


def run_cli(argv, capsys):
    try:
        code = cli(argv)
    except SystemExit as exc:  # argparse refuses usage errors by exiting 2
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def mocked(monkeypatch):
    """Fake credentials and moto (nothing may reach AWS), without the bridge's environment."""
    fake_aws_env(monkeypatch.setenv)
    for name in ("STATE_TABLE", "QUEUE_URL", "GITHUB_RECOVERY_HOOKS", "GITHUB_API_URL", "JIRA_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield


@pytest.fixture
def aws(mocked):
    return create_worker_resources()


HOOK = "repos/acme/webapp/hooks/1"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["recover"], {}, "required: TRACKER"),
        (["recover", "jira"], {}, "invalid choice"),
        (["recover", "github", "--state-table", "t"], {"GITHUB_TOKEN": "x"}, "names no hook"),
        (
            ["recover", "github", "--hook", "acme/webapp", "--state-table", "t"],
            {"GITHUB_TOKEN": "x"},
            "is not a hook",
        ),
        (["recover", "github", "--hook", HOOK, "--state-table", "t"], {}, "GITHUB_TOKEN is empty or not set"),
        (
            ["recover", "github", "--hook", HOOK, "--token-env", "MY_TOKEN", "--state-table", "t"],
            {},
            "MY_TOKEN",
        ),
        (["recover", "github", "--hook", HOOK], {"GITHUB_TOKEN": "x"}, "no state table"),
        (["recover", "github", "--hook", HOOK, "--since", "yesterday"], {}, "ISO 8601"),
        (["recover", "github", "--hook", HOOK, "--max-redeliveries", "0"], {}, "whole number >= 1"),
        (["recover", "github", "--hook", HOOK, "--lookback-hours", "x"], {}, "whole number"),
        (
            ["recover", "github", "--hook", HOOK, "--state-table", "t", "--api-url", "ftp://github"],
            {"GITHUB_TOKEN": "x"},
            "http(s)://",
        ),
        (["recover", "github", "--nope"], {}, "unrecognized arguments"),
        (["reconcile"], {}, "required: TRACKER"),
        (["reconcile", "jira", "--project", "P"], {}, "no Jira site"),
        (["reconcile", "jira", "--site", "https://a.atlassian.net", "--project", "P"], {}, "JIRA_EMAIL"),
        (
            ["reconcile", "jira", "--site", "https://a.atlassian.net", "--project", "P"],
            {"JIRA_EMAIL": "e"},
            "JIRA_API_TOKEN",
        ),
        (
            [
                "reconcile",
                "jira",
                "--site",
                "https://a",
                "--project",
                "P",
                "--overlap-minutes",
                "2",
                "--settle-minutes",
                "2",
            ],
            {"JIRA_EMAIL": "e", "JIRA_API_TOKEN": "t"},
            "larger than --settle-minutes",
        ),
        (
            ["reconcile", "jira", "--site", "https://a", "--state-table", "t", "--queue-url", "q"],
            {"JIRA_EMAIL": "e", "JIRA_API_TOKEN": "t"},
            "which projects?",
        ),
        (
            ["reconcile", "jira", "--site", "https://a", "--project", "P", "--routing-config", "r.yaml"],
            {},
            "not allowed with argument",
        ),
        (
            ["reconcile", "jira", "--site", "https://a", "--project", "P", "--state-table", "t"],
            {"JIRA_EMAIL": "e", "JIRA_API_TOKEN": "t"},
            "no events queue",
        ),
        (
            [
                "reconcile",
                "jira",
                "--site",
                "a.atlassian.net",
                "--project",
                "P",
                "--state-table",
                "t",
                "--queue-url",
                "q",
            ],
            {"JIRA_EMAIL": "e", "JIRA_API_TOKEN": "t"},
            "http(s)://host",
        ),
    ],
)
def test_bad_input_is_refused_with_exit_2_and_a_plain_message(
    mocked, monkeypatch, capsys, argv, env, message
):
    for name in ("GITHUB_TOKEN", "MY_TOKEN", "JIRA_EMAIL", "JIRA_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run_cli(argv, capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert out == ""


def test_recover_github_dry_run_json_prints_only_the_summary(aws, fake_github, monkeypatch, capsys):
    hook = fake_github.add_hook("acme/webapp", url="http://127.0.0.1:9/unreachable", secret="s")
    attempt = fake_github.send_event(hook.hook_id, "issues", {"action": "opened"})
    monkeypatch.setenv("GITHUB_TOKEN", fake_github.token)
    argv = [
        "recover",
        "github",
        "--hook",
        hook.path,
        "--api-url",
        fake_github.url,
        "--state-table",
        aws.state_table,
    ]
    code, out, err = run_cli([*argv, "--dry-run", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["would_redeliver"] == 1
    assert summary["candidates"][0]["guid"] == attempt.guid
    assert len(fake_github.deliveries()) == 1
    # When it runs for real (text output), GitHub redelivers it once
    from kantata_bridge.recovery import github_api

    monkeypatch.setattr(github_api, "MIN_WRITE_INTERVAL", 0.0)
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    assert "1 failed deliveries redelivered" in out
    assert attempt.guid in out
    assert [a.redelivery for a in fake_github.deliveries()] == [False, True]


def test_recover_github_exits_1_when_github_refuses_the_token(aws, fake_github, monkeypatch, capsys):
    hook = fake_github.add_hook("acme/webapp", url="http://127.0.0.1:9/x", secret="s")
    monkeypatch.setenv("GITHUB_TOKEN", "not-the-token")
    code, out, err = run_cli(
        [
            "recover",
            "github",
            "--hook",
            hook.path,
            "--api-url",
            fake_github.url,
            "--state-table",
            aws.state_table,
        ],
        capsys,
    )
    assert code == 1
    assert "401" in err
    assert "not-the-token" not in out + err


def test_reconcile_jira_queues_a_missed_change(aws, fake_jira, monkeypatch, capsys):
    from kantata_bridge.envelope import DeliveryEnvelope

    fake_jira.create_issue("PROJ-7", "Missed", send_webhook=False)
    queue_url = boto3.client("sqs").create_queue(QueueName="cli-events")["QueueUrl"]
    monkeypatch.setenv("JIRA_EMAIL", fake_jira.email)
    monkeypatch.setenv("JIRA_API_TOKEN", fake_jira.api_token)
    argv = ["reconcile", "jira", "--site", fake_jira.url, "--project", "PROJ", "--settle-minutes", "0"]
    argv += ["--state-table", aws.state_table, "--queue-url", queue_url]
    code, out, err = run_cli([*argv, "--dry-run"], capsys)
    assert code == 0, err
    assert "1 missed changes would be queued" in out
    code, out, err = run_cli([*argv, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["enqueued"] == 1
    (message,) = boto3.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    envelope = DeliveryEnvelope.from_sqs(message["Body"], message["MessageAttributes"])
    assert (envelope.tracker, envelope.origin) == ("jira", "reconciled")
    assert envelope.delivery_id.startswith("reconcile:PROJ-7:")


def test_reconcile_jira_exits_1_when_the_search_fails(aws, fake_jira, monkeypatch, capsys):
    monkeypatch.setenv("JIRA_EMAIL", fake_jira.email)
    monkeypatch.setenv("JIRA_API_TOKEN", "wrong")
    code, out, err = run_cli(
        [
            "reconcile",
            "jira",
            "--site",
            fake_jira.url,
            "--project",
            "PROJ",
            "--state-table",
            aws.state_table,
            "--dry-run",
        ],
        capsys,
    )
    assert code == 1
    assert "401" in err
    assert "wrong" not in out + err
