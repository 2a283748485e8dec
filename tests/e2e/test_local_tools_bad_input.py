"""The local tools the bridge's own CLI does not cover, run with bad input: ``tracker-fakes`` and the Kantata
options of ``kantata-bridge serve``. Each ends in a one- or two-line error with the tool's prefix on stderr,
nothing on stdout and the documented exit code (2 bad input or usage), never a traceback.

In-process through ``main(argv)`` for most cases (the same code the console scripts run); as real processes for
what only a process shows: the entry point, ``--version``, a port in use, a closed stdout and Ctrl-C. Everything
binds 127.0.0.1; every process has a timeout.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kantata_bridge_cli.main import main as bridge_main
from tracker_fakes.server import main as fakes_main

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# serve with a real-Kantata target: if the options were not refused up front, the stack would start, so a free
# port, a log file under the test's directory and a short --duration keep even that case bounded.
SERVE = ["serve", "--port", "0", "--duration", "1", "--log-file", "{log}", "--kantata-token-env", "KT"]
LOCAL = "http://127.0.0.1:{closed}/api/v1"

# (case id, tool, argv, $KT, exit code, words the error must contain)
# argv placeholders: {closed} a local port nobody listens on, {busy} one that is taken, {log} a log file path.
CASES = [
    ("fakes: GitHub port negative", "fakes", ["--github-port", "-1"], None, 2, "a port is 0"),
    ("fakes: GitHub port too big", "fakes", ["--github-port", "99999"], None, 2, "a port is 0"),
    ("fakes: Jira port too big", "fakes", ["--jira-port", "70000"], None, 2, "a port is 0"),
    ("fakes: Jira port not a number", "fakes", ["--jira-port", "x"], None, 2, "not a port number"),
    ("fakes: unknown option", "fakes", ["--port", "1"], None, 2, "unrecognized arguments: --port"),
    (
        "fakes: GitHub port in use",
        "fakes",
        ["--github-port", "{busy}", "--jira-port", "0"],
        None,
        2,
        "cannot listen on 127.0.0.1:",
    ),
    (
        "fakes: Jira port in use",
        "fakes",
        ["--github-port", "0", "--jira-port", "{busy}"],
        None,
        2,
        "cannot listen on 127.0.0.1:",
    ),
    (
        "fakes: one port for both",
        "fakes",
        ["--github-port", "{closed}", "--jira-port", "{closed}"],
        None,
        2,
        "--github-port and --jira-port are both",
    ),
    (
        "serve: Kantata URL not a URL",
        "bridge",
        [*SERVE, "--kantata-base-url", "notaurl"],
        "a-token",
        2,
        "--kantata-base-url must be an http(s) URL",
    ),
    (
        "serve: Kantata URL without a host",
        "bridge",
        [*SERVE, "--kantata-base-url", "http://"],
        "a-token",
        2,
        "--kantata-base-url must be an http(s) URL",
    ),
    (
        "serve: Kantata URL not http(s)",
        "bridge",
        [*SERVE, "--kantata-base-url", "ftp://127.0.0.1/api/v1"],
        "a-token",
        2,
        "--kantata-base-url must be an http(s) URL",
    ),
    (
        "serve: token with a space",
        "bridge",
        [*SERVE, "--kantata-base-url", LOCAL],
        "two words",
        2,
        "token must be a non-empty string of visible ASCII characters",
    ),
    (
        "serve: token with a control character",
        "bridge",
        [*SERVE, "--kantata-base-url", LOCAL],
        "tok\x01en",
        2,
        "token must be a non-empty string of visible ASCII characters",
    ),
    (
        "serve: token not ASCII",
        "bridge",
        [*SERVE, "--kantata-base-url", LOCAL],
        "tökén",
        2,
        "token must be a non-empty string of visible ASCII characters",
    ),
]
PREFIX = {"bridge": "kantata-bridge: error: ", "fakes": "tracker-fakes: error: "}
ENTRY: dict[str, Callable[[list[str]], int]] = {"bridge": bridge_main, "fakes": fakes_main}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def assert_one_clear_error(tool: str, code: int, out: str, err: str, expected_code: int, words: str) -> None:
    lines = err.splitlines()
    assert code == expected_code, err
    assert "Traceback" not in err + out
    assert 1 <= len(lines) <= 2, err
    assert lines[0].startswith(PREFIX[tool]), err
    assert words in err
    assert out == ""


@pytest.mark.parametrize(
    ("tool", "argv", "token", "expected_code", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_is_one_clear_error_with_the_documented_exit_code(
    tool, argv, token, expected_code, words, capsys, monkeypatch, tmp_path, busy_port
):
    # Given the token variable of the case (if any) and its placeholders filled in
    if token is None:
        monkeypatch.delenv("KT", raising=False)
    else:
        monkeypatch.setenv("KT", token)
    values = {"closed": str(free_port()), "busy": str(busy_port), "log": str(tmp_path / "serve.log")}
    argv = [a.format(**values) if "{" in a else a for a in argv]
    # When the command runs
    code = ENTRY[tool](argv)
    # Then it ends with one clear error line (and at most a hint) and the documented exit code
    printed = capsys.readouterr()
    assert_one_clear_error(tool, code, printed.out, printed.err, expected_code, words)


# --------------------------------------------------------------------------- as real processes

FAKES = [sys.executable, "-m", "tracker_fakes.server"]


def process_env() -> dict[str, str]:
    """This checkout's code first (the venv may hold another checkout's packages in editable mode)."""
    paths = [str(ROOT / d) for d in ("layers/bridge", "local", "cli")]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run(command: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        command, cwd=ROOT, env=process_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


# (case id, arguments, exit code, words the error must contain)
PROCESS_CASES = [
    ("tracker-fakes --github-port -1", ["--github-port", "-1"], 2, "a port is 0"),
    ("tracker-fakes --github-port 99999", ["--github-port", "99999"], 2, "a port is 0"),
    (
        "tracker-fakes, GitHub port in use",
        ["--github-port", "{busy}", "--jira-port", "0"],
        2,
        "cannot listen on 127.0.0.1:",
    ),
]


@pytest.mark.parametrize(
    ("arguments", "expected_code", "words"), [pytest.param(*case[1:], id=case[0]) for case in PROCESS_CASES]
)
def test_a_process_ends_with_one_clear_error_and_the_documented_exit_code(
    arguments, expected_code, words, busy_port
):
    argv = [a.format(busy=busy_port) for a in arguments]
    done = run([*FAKES, *argv])
    assert_one_clear_error("fakes", done.returncode, done.stdout, done.stderr, expected_code, words)


def test_a_busy_port_names_the_port_and_what_to_do(busy_port):
    done = run([*FAKES, "--github-port", "0", "--jira-port", str(busy_port)])
    assert done.stderr.splitlines() == [
        f"tracker-fakes: error: cannot listen on 127.0.0.1:{busy_port}: Address already in use",
        "Stop what uses that port or pick another --jira-port (0 picks a free one).",
    ]


def test_version_is_the_package_version():
    from importlib.metadata import version

    done = run([*FAKES, "--version"])
    expected = f"tracker-fakes {version('kantata-bridge')}\n"
    assert (done.returncode, done.stdout, done.stderr) == (0, expected, "")


def test_help_ends_with_examples_and_exit_codes(capsys):
    assert fakes_main(["--help"]) == 0
    examples = capsys.readouterr().out.split("\nexamples:\n", 1)[1]
    assert "  tracker-fakes --github-port 0 --jira-port 0" in examples
    assert "exit codes: 0 " in examples


def test_a_closed_stdout_is_one_line_and_exit_1():
    # `tracker-fakes | head`, once head has gone: the addresses cannot be written
    process = subprocess.Popen(  # noqa: S603 - our own command
        [*FAKES, "--github-port", "0", "--jira-port", "0"],
        cwd=ROOT,
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()
    try:
        err = process.stderr.read()
        code = process.wait(timeout=60)
    finally:
        process.kill()
    assert_one_clear_error("fakes", code, "", err, 1, "broken pipe")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_ctrl_c_stops_it_cleanly_with_exit_0(signum):
    process = subprocess.Popen(  # noqa: S603 - our own command
        [*FAKES, "--github-port", "0", "--jira-port", "0"],
        cwd=ROOT,
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        banner = [process.stdout.readline() for _ in range(3)]
        assert banner[2] == "Press Ctrl-C to stop.\n", banner
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert (process.returncode, out, err) == (0, "stopping\n", "")
