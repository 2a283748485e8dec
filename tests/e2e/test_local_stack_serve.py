"""`kantata-bridge serve`: the local stack kept running for a person's own webhooks, optionally against a
real Kantata account (here: a separate sandbox standing in for one, with its own token)."""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
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


class ServeProcess:
    """``kantata-bridge serve`` as a user runs it: a process whose stdout is read line by line."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "kantata_bridge_cli", "serve", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def read_until(self, text: str, timeout: float = 60) -> str:
        """Everything printed up to and including the first line holding ``text`` (and the block after it,
        up to the next blank-free timestamped line or a short pause)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.seen.append(line)
            if text in line:
                while True:  # the rest of that block (its lines follow at once)
                    try:
                        self.seen.append(self.lines.get(timeout=0.5))
                    except queue.Empty:
                        return "".join(self.seen)
        raise AssertionError(f"serve never printed {text!r}; it printed:\n{''.join(self.seen)}")

    def kill(self) -> None:
        """End it whatever state it is in (a failed test must not leave a stack running)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C, as a terminal sends it; returns the exit code and stderr."""
        self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=60)
        finally:
            self.process.kill()
        return self.process.returncode, err


@pytest.fixture
def serve_process():
    """Start ``kantata-bridge serve`` processes; any still running at the end of the test is killed."""
    started: list[ServeProcess] = []

    def start(argv: list[str], env: dict[str, str]) -> ServeProcess:
        started.append(ServeProcess(argv, env))
        return started[-1]

    yield start
    for process in started:
        process.kill()


def commands_after(text: str, marker: str) -> list[list[str]]:
    """The kantata-bridge commands printed after the last line holding ``marker`` (continuations joined)."""
    block = text[text.rindex(marker) :].replace("\\\n", " ")
    commands = []
    for line in block.splitlines()[1:]:
        if not line.startswith(" "):
            break
        if line.strip().startswith("kantata-bridge "):
            commands.append(shlex.split(line.strip()))
    return commands


def test_serve_says_what_to_run_for_a_parked_and_a_dead_lettered_delivery_and_ctrl_c_ends_it_with_0(
    tmp_path, monkeypatch, capsys, serve_process
):
    # Given serve running against a Kantata account that refuses the first report for good (422) ...
    with KantataSandbox(token="account-token") as account:
        account.add_workspace("Project PROJ", workspace_id="41002")
        account.faults.script([422], method="POST", path_prefix="/status_reports")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["MY_KANTATA_TOKEN"] = "account-token"
        serve = serve_process(
            [
                "--port",
                "0",
                "--kantata-base-url",
                account.base_url,
                "--kantata-token-env",
                "MY_KANTATA_TOKEN",
                "--log-file",
                str(tmp_path / "serve.log"),
            ],
            env,
        )
        banner = serve.read_until("Redrive dead-lettered and parked deliveries")
        url = re.search(r"Jira webhook URL\s+: (\S+)", banner).group(1)
        # When a delivery is parked
        headers, body = jira_delivery("jira_issue_created.json")
        assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 202
        parked_text = serve.read_until("outcome parked")
        # Then serve printed the explain and redrive commands for it, and the explain command works as printed
        explain, redrive = commands_after(parked_text, "outcome parked")
        assert explain[:2] == ["kantata-bridge", "explain"]
        assert redrive[:2] == ["kantata-bridge", "redrive"]
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            monkeypatch.delenv(name)
        capsys.readouterr()
        assert cli(explain[1:]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["outcome"]["outcome"] == "parked"
        assert shown["replay"]["route"]["workspace_id"] == "41002"
        # When Kantata then fails every request (503) until the delivery runs out of attempts
        account.faults.set_rate(1.0, statuses=[503])
        headers, body = jira_delivery("jira_issue_updated_done.json")
        assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 202
        dead_text = serve.read_until("dead-lettered")
        # Then serve says so, and the redrive command it printed finds the message in the dead-letter queue
        _, redrive_dlq = commands_after(dead_text, "dead-lettered")
        assert redrive_dlq[redrive_dlq.index("--source") + 1] == "dlq"
        deadline = time.monotonic() + 30
        listing = ""
        while "1 message(s) would move" not in listing and time.monotonic() < deadline:
            assert cli([*redrive_dlq[1:], "--dry-run"]) == 0
            listing = capsys.readouterr().out
        assert "dead-letter queue: 1 message(s) would move" in listing
        # And Ctrl-C ends serve with exit 0 and one line, no traceback
        code, err = serve.interrupt()
    assert code == 0, err
    assert err == "kantata-bridge: stopped; nothing left running\n"
