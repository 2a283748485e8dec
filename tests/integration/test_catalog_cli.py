"""`kantata-bridge catalog plan|apply` against the sandbox, as an operator runs it: in-process through
``main()``, and as a real process where the terminal, the pipe or the signal is the point."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from kantata_bridge.kantata import client as kantata_client
from kantata_bridge_cli.main import main
from kantata_sandbox.server import KantataSandbox

pytestmark = pytest.mark.integration

EXPORT = Path(__file__).resolve().parents[2] / "events" / "payloads" / "jira-project-statuses.json"
ESC = "\x1b["


@pytest.fixture
def config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["catalog", "from-jira", str(EXPORT), "--set-name", "PROJ workflow"]) == 0
    path = tmp_path / "catalog.yaml"
    path.write_text(capsys.readouterr().out)
    return path


@pytest.fixture
def common(config: Path, kantata_sandbox: KantataSandbox, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The options that point the CLI at the sandbox (the token comes from an environment variable)."""
    monkeypatch.setenv("SANDBOX_TOKEN", kantata_sandbox.token)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return ["--config", str(config), "--base-url", kantata_sandbox.base_url, "--token-env", "SANDBOX_TOKEN"]


@pytest.fixture
def no_retry_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's default retry policy, without its sleeps (the number of retries is what is tested)."""
    policy = kantata_client.RetryPolicy
    monkeypatch.setattr(kantata_client, "RetryPolicy", partial(policy, sleep=lambda _: None))


class Terminal(io.StringIO):
    """Standard input as a terminal where a person types ``answer`` (``on_read`` runs as they do)."""

    def __init__(self, answer: str, on_read: Callable[[], None] | None = None) -> None:
        super().__init__(answer)
        self.on_read = on_read

    def isatty(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:
        if self.on_read is not None:
            self.on_read()
        return super().readline(-1 if size is None else size)


def test_plan_apply_and_reapply_from_the_command_line(
    config: Path, common: list[str], kantata_sandbox: KantataSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["catalog", "plan", *common]) == 0
    captured = capsys.readouterr()
    assert '+ create set "PROJ workflow"' in captured.out
    assert "Plan: 12 changes." in captured.out
    assert ESC not in captured.out  # not a terminal: no colour
    assert captured.err.splitlines()[0] == f"Kantata: {kantata_sandbox.base_url}"  # the target, first
    assert [r.method for r in kantata_sandbox.requests] == ["GET"]

    assert main(["catalog", "apply", "--auto-approve", *common]) == 0
    captured = capsys.readouterr()
    assert "Kantata is in step with the catalog" in captured.out
    state = config.with_name("catalog.state.json")
    assert captured.err.splitlines()[:2] == [
        f"Kantata: {kantata_sandbox.base_url}",
        f"State file: {state} (apply saves the pinned Kantata ids there)",
    ]
    assert "PROJ workflow" in json.loads(state.read_text())["sets"]

    assert main(["catalog", "apply", "--auto-approve", *common]) == 0
    assert "No changes: Kantata is in step with the catalog." in capsys.readouterr().out

    assert main(["catalog", "apply", "--auto-approve", *common, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["changes"] == 0
    assert summary["converged"] is True


def test_apply_that_kantata_refuses_exits_1(
    config: Path, common: list[str], kantata_sandbox: KantataSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    kantata_sandbox.faults.script([422], method="POST", path_prefix="/task_status_sets")
    code = main(["catalog", "apply", "--auto-approve", *common, "--no-state"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED" in out
    assert "Run apply again" in out
    assert not config.with_name("catalog.state.json").exists()


def test_a_state_file_that_cannot_be_written_is_a_warning_not_a_crash(
    common: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "no-such-dir" / "catalog.state.json"

    code = main(["catalog", "apply", "--auto-approve", *common, "--state", str(state)])

    captured = capsys.readouterr()
    assert code == 0
    assert "Kantata is in step with the catalog" in captured.out
    assert f"warning: pins not saved to {state}" in captured.err


def test_a_state_file_that_cannot_be_read_is_a_warning_not_a_crash(
    common: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "catalog.state.json"
    state.write_text("[" * 100_000)

    assert main(["catalog", "plan", *common, "--state", str(state)]) == 0

    err = capsys.readouterr().err
    assert f"warning: ignoring {state}: the pins are nested too deeply" in err
    assert "Traceback" not in err


def test_plan_detailed_exitcode_tells_drift_from_no_drift_for_ci(
    common: list[str], kantata_sandbox: KantataSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an empty account: the plan has changes → 2 (and the JSON still parses)
    assert main(["catalog", "plan", "--detailed-exitcode", "--json", *common]) == 2
    assert json.loads(capsys.readouterr().out)["changes"] == 12
    # After apply: no changes → 0; without the option, 0 either way
    assert main(["catalog", "apply", "--auto-approve", *common]) == 0
    assert main(["catalog", "plan", "--detailed-exitcode", *common]) == 0
    kantata_sandbox.state.create_task_status_set(
        {"name": "PROJ workflow"}, {}
    )  # a second set with the name: ambiguous
    capsys.readouterr()
    # A set that cannot be planned → 1, never 2
    assert main(["catalog", "plan", "--detailed-exitcode", *common]) == 1
    assert "Kantata has 2 sets with this name" in capsys.readouterr().out


@pytest.mark.parametrize("json_out", [False, True], ids=["text", "json"])
def test_unreachable_kantata_names_the_url_and_each_retry_in_one_line(
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_retry_sleep: None,
    json_out: bool,
) -> None:
    # Given a base URL where nothing listens
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/api/v1"
    monkeypatch.setenv("KANTATA_TOKEN", "secret-token-value")

    code = main(
        ["catalog", "plan", "--config", str(config), "--base-url", url, *(["--json"] if json_out else [])]
    )

    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 1
    assert captured.out == ""
    assert lines[0] == f"Kantata: {url}"
    retries = [line for line in lines if "retry" in line]
    assert [line.split(" in ")[0] for line in retries] == [
        f"warning: Kantata GET /task_status_sets failed (connection error); retry {n}" for n in (1, 2, 3, 4)
    ]
    assert lines[5] == (
        f"kantata-bridge: error: cannot read Kantata at {url}: GET /task_status_sets failed: connection error (ConnectionError)"
    )
    assert lines[6].startswith("Check --base-url. For the local sandbox: kantata-sandbox --port 8900")
    assert len(lines) == 7
    assert "secret-token-value" not in captured.err
    assert "Traceback" not in captured.err
    assert "{" not in captured.err


def test_apply_on_a_terminal_shows_the_plan_and_asks_before_writing(
    common: list[str],
    kantata_sandbox: KantataSandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # When a person answers anything but "yes"
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    assert main(["catalog", "apply", *common]) == 1
    captured = capsys.readouterr()
    # Then the plan and the question were on stderr, nothing was written, and stdout stays empty
    assert '+ create set "PROJ workflow"' in captured.err
    assert (
        f"Apply these 12 changes to Kantata at {kantata_sandbox.base_url}? Only 'yes' applies:"
        in captured.err
    )
    assert "error: apply declined; nothing was written to Kantata" in captured.err
    assert [r.method for r in kantata_sandbox.requests] == ["GET"]
    assert captured.out == ""

    # When they answer "yes", with --json: the review is on stderr, and stdout is the JSON summary only
    monkeypatch.setattr(sys, "stdin", Terminal("yes\n"))
    assert main(["catalog", "apply", "--json", *common]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["converged"] is True
    assert "Plan: 12 changes." in captured.err

    # When there is nothing to change, apply does not ask
    monkeypatch.setattr(sys, "stdin", Terminal(""))
    assert main(["catalog", "apply", *common]) == 0
    captured = capsys.readouterr()
    assert "Only 'yes'" not in captured.err
    assert "No changes: Kantata is in step" in captured.out


def test_apply_writes_nothing_when_kantata_changed_while_the_person_read_the_plan(
    common: list[str],
    kantata_sandbox: KantataSandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given someone creates the set in Kantata while the plan is being read
    monkeypatch.setattr(
        sys,
        "stdin",
        Terminal(
            "yes\n",
            on_read=lambda: kantata_sandbox.state.create_task_status_set({"name": "PROJ workflow"}, {}),
        ),
    )
    # When the person says yes, Then apply stops before writing, and says so
    assert main(["catalog", "apply", *common]) == 1
    assert "Kantata changed since the plan was shown" in capsys.readouterr().out
    assert [r.method for r in kantata_sandbox.requests] == ["GET", "GET"]


def test_ctrl_c_at_the_question_ends_in_one_line(
    common: list[str],
    kantata_sandbox: KantataSandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sys, "stdin", Terminal("", on_read=interrupt))
    assert main(["catalog", "apply", *common]) == 1
    err = capsys.readouterr().err
    assert err.rstrip().splitlines()[-1] == (
        "kantata-bridge: error: interrupted; if the apply had started writing, run it again: it re-plans from Kantata"
    )
    assert "Traceback" not in err
    assert [r.method for r in kantata_sandbox.requests] == ["GET"]


# ---------------------------------------------------------------- as a real process


def _cli_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NO_COLOR", "KANTATA_BASE_URL", "CATALOG_CONFIG_FILE")
    }
    env.update(extra, TERM="xterm")
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "kantata_bridge_cli", "catalog", *args]


def test_json_stdout_is_only_the_summary_after_a_retried_request(
    common: list[str], kantata_sandbox: KantataSandbox
) -> None:
    # Given Kantata answers the first read with 503 (the client retries it, and logs the retry)
    for json_out in (True, False):
        kantata_sandbox.faults.script([503], method="GET")
        done = subprocess.run(  # noqa: S603 - our own CLI
            _cli("plan", *common, *(["--json"] if json_out else [])),
            capture_output=True,
            text=True,
            env=_cli_env(SANDBOX_TOKEN=kantata_sandbox.token),
            timeout=120,
            check=False,
        )
        # Then stdout is the data only (JSON that parses, or the plan), and the retry is one line on stderr
        assert done.returncode == 0, done.stderr
        if json_out:
            assert json.loads(done.stdout)["changes"] == 12
        else:
            assert done.stdout.startswith('Task status set "PROJ workflow"')
        retries = [line for line in done.stderr.splitlines() if "retry" in line]
        assert len(retries) == 1
        assert retries[0].startswith(
            "warning: Kantata GET /task_status_sets failed (503, unavailable); retry 1 in"
        )
        assert "{" not in done.stderr


@pytest.mark.parametrize("command", ["from-jira", "plan"])
def test_a_reader_that_closes_the_pipe_early_gets_no_traceback(
    common: list[str], kantata_sandbox: KantataSandbox, command: str
) -> None:
    # Given standard output is a pipe whose reader is already gone (`… | head` that has exited)
    read_end, write_end = os.pipe()
    os.close(read_end)
    args = [str(EXPORT), "--set-name", "P"] if command == "from-jira" else common
    try:
        done = subprocess.run(  # noqa: S603 - our own CLI
            _cli(command, *args),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=_cli_env(SANDBOX_TOKEN=kantata_sandbox.token),
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    # Then one line says so, with exit 1
    assert done.returncode == 1
    assert (
        done.stderr.splitlines()[-1]
        == "kantata-bridge: error: the output was closed before all of it was written (broken pipe)"
    )
    assert "Traceback" not in done.stderr
    assert "Exception ignored" not in done.stderr


@dataclass
class Session:
    """A CLI process on a pseudo-terminal: what it shows, and a way to type."""

    process: subprocess.Popen[bytes]
    master: int
    shown: bytes = b""

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        """Read what the process shows until ``text`` appears (or the process ends, or ``timeout`` passes)."""
        while text.encode() not in self.shown:
            ready, _, _ = select.select([self.master], [], [], timeout)
            if not ready:
                break
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # the process closed the terminal
                break
            if not chunk:
                break
            self.shown += chunk

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self) -> int:
        self.wait_for("\x00never\x00", timeout=60)  # drain until it closes the terminal
        return self.process.wait(timeout=60)


@pytest.fixture
def terminal(kantata_sandbox: KantataSandbox) -> Iterator[Callable[..., Session]]:
    sessions: list[Session] = []

    def start(*args: str, **env: str) -> Session:
        master, slave = pty.openpty()
        process = subprocess.Popen(  # noqa: S603 - our own CLI
            _cli(*args),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=_cli_env(SANDBOX_TOKEN=kantata_sandbox.token, **env),
            start_new_session=True,
        )
        os.close(slave)
        session = Session(process, master)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        if session.process.poll() is None:
            session.process.kill()
            session.process.wait(timeout=60)
        os.close(session.master)


def test_on_a_real_terminal_apply_asks_and_shows_colour(
    common: list[str], kantata_sandbox: KantataSandbox, terminal: Callable[..., Session]
) -> None:
    # When apply runs on a terminal and the person types "yes"
    session = terminal("apply", *common)
    session.wait_for("Only 'yes' applies: ")
    assert ESC + "32m" in session.shown.decode()  # the additions in green
    session.type("yes\n")
    # Then it applies, and says so in colour
    assert session.finish() == 0
    assert ESC + "1mApply: 12 changes made; Kantata is in step with the catalog." in session.shown.decode()


def test_no_color_turns_colour_off_on_a_terminal(
    common: list[str], kantata_sandbox: KantataSandbox, terminal: Callable[..., Session]
) -> None:
    session = terminal("plan", *common, NO_COLOR="1")
    assert session.finish() == 0
    shown = session.shown.decode()
    assert "Plan: 12 changes." in shown
    assert ESC not in shown


def test_ctrl_c_on_a_real_terminal_ends_in_one_line_and_writes_nothing(
    common: list[str], kantata_sandbox: KantataSandbox, terminal: Callable[..., Session]
) -> None:
    session = terminal("apply", *common)
    session.wait_for("Only 'yes' applies: ")
    os.killpg(session.process.pid, signal.SIGINT)  # what Ctrl-C does: the terminal's process group
    assert session.finish() == 1
    shown = session.shown.decode()
    assert "error: interrupted; if the apply had started writing, run it again" in shown
    assert "Traceback" not in shown
    assert [r.method for r in kantata_sandbox.requests] == ["GET"]
