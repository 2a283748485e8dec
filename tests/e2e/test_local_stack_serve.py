"""`kantata-bridge serve`: the local stack kept running for a person's own webhooks, optionally against a
real Kantata account (here: a separate sandbox standing in for one, with its own token)."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from kantata_bridge_cli.main import main as cli
from kantata_sandbox.server import KantataSandbox

from tests.support.deliveries import jira_delivery

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_posts_to_the_kantata_account_given_with_a_token_from_the_environment(
    tmp_path, monkeypatch, capsys
):
    # Given a Kantata account (a sandbox with its own token) holding the routed workspace
    with KantataSandbox(token="account-token") as account:
        account.add_workspace("Project PROJ", workspace_id="41002")
        monkeypatch.setenv("MY_KANTATA_TOKEN", "account-token")
        port = free_port()
        args = [
            "serve",
            "--port",
            str(port),
            "--duration",
            "15",
            "--kantata-base-url",
            account.base_url,
            "--kantata-token-env",
            "MY_KANTATA_TOKEN",
            "--log-file",
            str(tmp_path / "serve.log"),
        ]
        result: list[int] = []
        runner = threading.Thread(target=lambda: result.append(cli(args)))
        runner.start()
        # When a signed Jira delivery arrives on the served URL
        headers, body = jira_delivery("jira_issue_created.json")
        status = None
        # The stack takes a moment to start (longer on a loaded machine): retry refused connections until a
        # deadline rather than a fixed number of times; the serve duration only starts once it is up.
        deadline = time.monotonic() + 60
        while status is None and runner.is_alive() and time.monotonic() < deadline:
            try:
                status = requests.post(
                    f"http://127.0.0.1:{port}/webhooks/jira", data=body, headers=headers, timeout=5
                ).status_code
            except requests.ConnectionError:
                time.sleep(0.1)
        deadline = time.monotonic() + 20
        while not account.state.status_reports and time.monotonic() < deadline:
            time.sleep(0.1)
        banner = capsys.readouterr().out
        # And the redrive command serve printed is run as printed (a dry run), by a user whose AWS
        # configuration names another region
        redrive = printed_redrive_command(banner)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_DEFAULT_REGION="eu-west-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
        listing = subprocess.run(  # noqa: S603 - our own CLI, with the arguments serve printed
            [sys.executable, "-m", "kantata_bridge_cli", *redrive[1:], "--dry-run"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        runner.join(timeout=30)
    # Then the report is in that account, serve printed the request and the outcome, and it ended cleanly
    assert status == 202
    assert [r.workspace_id for r in account.state.status_reports.values()] == ["41002"]
    # And the printed redrive command reached the stack's queues and table
    assert redrive[:2] == ["kantata-bridge", "redrive"]
    assert listing.returncode == 0, listing.stderr
    assert "dead-letter queue: 0 message(s) would move" in listing.stdout
    assert "parked deliveries: 0 would be queued again" in listing.stdout
    out = banner + capsys.readouterr().out
    assert "Jira webhook URL" in out
    assert "HTTP 202 POST /webhooks/jira" in out
    assert "outcome posted" in out
    assert "account-token" not in out
    assert result == [0]


def printed_redrive_command(banner: str) -> list[str]:
    """The `kantata-bridge redrive ...` command from serve's banner, continuation lines joined."""
    start = banner.index("kantata-bridge redrive")
    text = banner[start:].split("\n\n", 1)[0].replace("\\\n", " ")
    return shlex.split(text)


def test_serve_refuses_a_kantata_url_without_a_token_variable(capsys, monkeypatch):
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    assert cli(["serve", "--kantata-base-url", "https://example.invalid/api/v1"]) == 2
    assert "--kantata-token-env" in capsys.readouterr().err
    assert (
        cli(["serve", "--kantata-base-url", "https://x.invalid", "--kantata-token-env", "NO_SUCH_TOKEN"]) == 2
    )
    assert "NO_SUCH_TOKEN is empty or not set" in capsys.readouterr().err
