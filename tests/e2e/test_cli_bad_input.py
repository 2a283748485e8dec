"""Every documented command run with bad input ends in a one- or two-line error with the tool's prefix and the
documented exit code (0 ok, 1 failed, 2 bad input or usage), never a traceback.

In-process through ``main(argv)`` for most cases (fast, and the same code the console scripts run); as a real
process for the cases only a process shows: a closed stdout (``… | head``), the console entry points, and an
AWS configuration read from a bare environment.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kantata_bridge_cli.main import main as bridge_main
from kantata_sandbox.server import main as sandbox_main
from moto import mock_aws

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PING = str(ROOT / "events" / "payloads" / "github_ping.json")
OPENED = str(ROOT / "events" / "payloads" / "github_issues_opened.json")
EXAMPLE = str(ROOT / "config" / "routing.example.yaml")
RAW = ["--tracker", "github", "--header", "X-GitHub-Event: issues", "--body", OPENED]
RECORDED = ["--tracker", "github", "--delivery-id", "d-1", "--state-table", "missing-table"]
QUEUE = ["--queue-url", "http://127.0.0.1:9/123456789012/q"]
HOOK = ["--hook", "repos/acme/webapp/hooks/1", "--state-table", "t"]
JIRA = ["--site", "https://acme.atlassian.net", "--email-env", "BAD_SECRETS", "--token-env", "BAD_SECRETS"]

# (case id, tool, argv, environment, exit code, words the error must contain)
# argv placeholders: {closed} a local port nobody listens on, {busy} one that is taken, {bad_config} an
# invalid routing config, {latin1} a file that is not UTF-8. ODD_TOKEN holds a token that is not ASCII. Environments: "aws" fake credentials and a region; "bare" none of either;
# "region" a region but no credentials; "moto" fake credentials inside moto's mock_aws.
CASES = [
    ("no command", "bridge", [], "aws", 2, "the following arguments are required: COMMAND"),
    ("unknown command", "bridge", ["deploy"], "aws", 2, "invalid choice: 'deploy'"),
    ("unknown option", "bridge", ["explain", "--nope"], "aws", 2, "the following arguments are required"),
    ("explain: no tracker", "bridge", ["explain", "--body", PING], "aws", 2, "--tracker"),
    ("explain: nothing to explain", "bridge", ["explain", "--tracker", "github"], "aws", 2, "give --body"),
    (
        "explain: unknown tracker",
        "bridge",
        ["explain", "--tracker", "svn", "--body", PING, "--config", EXAMPLE],
        "aws",
        2,
        "unknown tracker 'svn'",
    ),
    (
        "explain: body missing",
        "bridge",
        ["explain", "--tracker", "github", "--body", "/nonexistent.json", "--config", EXAMPLE],
        "aws",
        2,
        "cannot read /nonexistent.json",
    ),
    (
        "explain: malformed header",
        "bridge",
        ["explain", "--tracker", "github", "--header", "no colon", "--body", PING, "--config", EXAMPLE],
        "aws",
        2,
        "--header must look like",
    ),
    ("explain: no routing config", "bridge", ["explain", *RAW], "aws", 2, "needs a routing config"),
    (
        "explain: routing config missing",
        "bridge",
        ["explain", *RAW, "--config", "/nonexistent.yaml"],
        "aws",
        2,
        "cannot read /nonexistent.yaml",
    ),
    (
        "explain: routing config invalid",
        "bridge",
        ["explain", *RAW, "--config", "{bad_config}"],
        "aws",
        2,
        "routes[0].workspace_id: must be a string of digits",
    ),
    ("explain: bad date", "bridge", ["explain", *RAW, "--today", "tomorrow"], "aws", 2, "not a date"),
    (
        "explain: delivery id without table",
        "bridge",
        ["explain", "--tracker", "github", "--delivery-id", "d-1"],
        "aws",
        2,
        "--delivery-id needs the state table",
    ),
    ("explain: no region", "bridge", ["explain", *RECORDED], "bare", 2, "no AWS region"),
    (
        "explain: no credentials",
        "bridge",
        ["explain", *RECORDED, "--region", "eu-west-1"],
        "bare",
        2,
        "no AWS credentials",
    ),
    (
        "explain: unknown profile",
        "bridge",
        ["explain", *RECORDED, "--profile", "nope"],
        "aws",
        2,
        "AWS profile 'nope' is not in your AWS configuration",
    ),
    (
        "explain: unreachable endpoint",
        "bridge",
        ["explain", *RECORDED, "--endpoint-url", "http://127.0.0.1:{closed}", "--region", "us-east-1"],
        "aws",
        2,
        "cannot reach the AWS endpoint http://127.0.0.1:",
    ),
    (
        "explain: missing table",
        "bridge",
        ["explain", *RECORDED, "--region", "us-east-1"],
        "moto",
        2,
        "state table 'missing-table' does not exist (region us-east-1)",
    ),
    (
        "explain: missing SSM routing parameter",
        "bridge",
        ["explain", *RAW, "--region", "us-east-1"],
        "moto+ssm",
        2,
        "SSM parameter '/bridge/routing' does not exist",
    ),
    ("redrive: no queue", "bridge", ["redrive", "--dry-run"], "aws", 2, "no events queue"),
    ("redrive: limit 0", "bridge", ["redrive", *QUEUE, "--limit", "0"], "aws", 2, "must be at least 1"),
    (
        "redrive: limit with move task",
        "bridge",
        ["redrive", *QUEUE, "--method", "move-task", "--limit", "5"],
        "aws",
        2,
        "--limit cannot be used with --method move-task",
    ),
    ("redrive: unknown source", "bridge", ["redrive", "--source", "s3"], "aws", 2, "invalid choice: 's3'"),
    ("redrive: unknown profile", "bridge", ["redrive", *QUEUE, "--profile", "nope"], "aws", 2, "'nope'"),
    ("redrive: no region", "bridge", ["redrive", *QUEUE, "--dry-run"], "bare", 2, "no AWS region"),
    (
        "redrive: unreachable endpoint",
        "bridge",
        [
            "redrive",
            "--endpoint-url",
            "http://127.0.0.1:{closed}",
            "--queue-url",
            "http://127.0.0.1:{closed}/123456789012/q",
            "--dead-letter-queue-url",
            "http://127.0.0.1:{closed}/123456789012/dlq",
            "--dry-run",
        ],
        "aws",
        2,
        "cannot reach the AWS endpoint",
    ),
    (
        "redrive: missing stack",
        "bridge",
        ["redrive", "--stack-name", "no-such-stack", "--region", "us-east-1", "--dry-run"],
        "moto",
        2,
        "cannot read stack no-such-stack",
    ),
    (
        "redrive: missing queue",
        "bridge",
        [
            "redrive",
            "--region",
            "us-east-1",
            "--queue-url",
            "https://sqs.us-east-1.amazonaws.com/123456789012/nope",
            "--dead-letter-queue-url",
            "https://sqs.us-east-1.amazonaws.com/123456789012/nope-dlq",
            "--dry-run",
        ],
        "moto",
        2,
        "does not exist (region us-east-1)",
    ),
    ("serve: port out of range", "bridge", ["serve", "--port", "99999"], "aws", 2, "a port is 0"),
    ("serve: port not a number", "bridge", ["serve", "--port", "http"], "aws", 2, "not a port number"),
    ("serve: duration 0", "bridge", ["serve", "--duration", "0"], "aws", 2, "must be more than 0"),
    (
        "serve: Kantata URL without a token",
        "bridge",
        ["serve", "--kantata-base-url", "https://example.invalid/api/v1"],
        "aws",
        2,
        "--kantata-base-url needs --kantata-token-env",
    ),
    (
        "serve: token variable without a URL",
        "bridge",
        ["serve", "--kantata-token-env", "X"],
        "aws",
        2,
        "--kantata-token-env needs --kantata-base-url",
    ),
    (
        "serve: webhook secrets not JSON",
        "bridge",
        ["serve", "--webhook-secrets-env", "BAD_SECRETS"],
        "aws",
        2,
        "BAD_SECRETS does not hold a JSON object",
    ),
    (
        "serve: routing config missing",
        "bridge",
        ["serve", "--port", "0", "--routing-config", "/nonexistent.yaml"],
        "aws",
        2,
        "cannot read the routing config /nonexistent.yaml",
    ),
    ("serve: port in use", "bridge", ["serve", "--port", "{busy}"], "aws", 2, "cannot listen on 127.0.0.1:"),
    ("demo: port out of range", "bridge", ["demo", "--port", "99999"], "aws", 2, "a port is 0"),
    ("demo: negative timeout", "bridge", ["demo", "--timeout", "-1"], "aws", 2, "must be more than 0"),
    (
        "demo: routing config invalid",
        "bridge",
        ["demo", "--routing-config", "{bad_config}"],
        "aws",
        2,
        "routes[0].workspace_id: must be a string of digits",
    ),
    ("link: no action", "bridge", ["link"], "aws", 2, "the following arguments are required: ACTION"),
    (
        "link add: workspace not digits",
        "bridge",
        ["link", "add", "--workspace", "acme", "github", "acme/webapp"],
        "aws",
        2,
        "--workspace must be a Kantata workspace id (digits)",
    ),
    (
        "link add: bad source",
        "bridge",
        ["link", "add", "--workspace", "41234567", "github", "acme/web/app"],
        "aws",
        2,
        "a GitHub source must be 'owner/repo' or 'owner/*'",
    ),
    (
        "link add: no token",
        "bridge",
        ["link", "add", "--workspace", "41234567", "jira", "PROJ", "--token-env", "NO_SUCH_TOKEN_VARIABLE"],
        "aws",
        2,
        "set the Kantata token in $NO_SUCH_TOKEN_VARIABLE",
    ),
    (
        "link remove: unknown tracker",
        "bridge",
        ["link", "remove", "--workspace", "1", "trello", "board"],
        "aws",
        2,
        "invalid choice: 'trello'",
    ),
    (
        "redrive: endpoint not a URL",
        "bridge",
        ["redrive", *QUEUE, "--endpoint-url", "notaurl", "--dry-run"],
        "aws",
        2,
        "argument --endpoint-url: must be an http(s) URL",
    ),
    (
        "redrive: endpoint port out of range",
        "bridge",
        ["redrive", *QUEUE, "--endpoint-url", "http://127.0.0.1:99999", "--dry-run"],
        "aws",
        2,
        "argument --endpoint-url: must be an http(s) URL",
    ),
    (
        "redrive: empty region",
        "bridge",
        ["redrive", *QUEUE, "--region", "", "--dry-run"],
        "aws",
        2,
        "argument --region: must be an AWS region",
    ),
    (
        "explain: endpoint port not a number",
        "bridge",
        ["explain", *RECORDED, "--endpoint-url", "http://127.0.0.1:abc"],
        "aws",
        2,
        "argument --endpoint-url: must be an http(s) URL",
    ),
    (
        "explain: routing config not UTF-8",
        "bridge",
        ["explain", *RAW, "--config", "{latin1}"],
        "aws",
        2,
        "is not UTF-8 text",
    ),
    (
        "explain: Kantata base URL",
        "bridge",
        [
            "explain",
            *RAW,
            "--config",
            EXAMPLE,
            "--kantata-token-env",
            "BAD_SECRETS",
            "--kantata-base-url",
            "x",
        ],
        "aws",
        2,
        "--kantata-base-url must be an http(s) URL",
    ),
    (
        "explain: Kantata base URL in capitals",
        "bridge",
        [
            "explain",
            *RAW,
            "--config",
            EXAMPLE,
            "--kantata-token-env",
            "BAD_SECRETS",
            "--kantata-base-url",
            "HTTP://u:p@127.0.0.1:9/api/v1",
        ],
        "aws",
        2,
        "got 'HTTP://127.0.0.1:9/api/v1'",
    ),
    (
        "explain: Kantata token not ASCII",
        "bridge",
        ["explain", *RAW, "--config", EXAMPLE, "--kantata-token-env", "ODD_TOKEN"],
        "aws",
        2,
        "--kantata-token-env ODD_TOKEN: token must be",
    ),
    ("recover: no hook", "bridge", ["recover", "github"], "aws", 2, "--hook"),
    (
        "recover: unknown profile",
        "bridge",
        ["recover", "github", *HOOK, "--token-env", "BAD_SECRETS", "--profile", "nope"],
        "aws",
        2,
        "AWS profile 'nope' is not in your AWS configuration",
    ),
    (
        "recover: huge lookback",
        "bridge",
        ["recover", "github", *HOOK, "--lookback-hours", "99999999999999999999"],
        "aws",
        2,
        "must be a whole number >= 1 and <= 1000000",
    ),
    (
        "recover: token not ASCII",
        "bridge",
        ["recover", "github", *HOOK, "--token-env", "ODD_TOKEN", "--api-url", "http://127.0.0.1:{closed}"],
        "aws",
        2,
        "the GitHub token must be visible ASCII",
    ),
    ("reconcile: no site", "bridge", ["reconcile", "jira"], "aws", 2, "no Jira site"),
    (
        "reconcile: stack unreachable",
        "bridge",
        [
            "reconcile",
            "jira",
            *JIRA,
            "--project",
            "PROJ",
            "--stack-name",
            "nope",
            "--endpoint-url",
            "http://127.0.0.1:{closed}",
            "--region",
            "us-east-1",
        ],
        "aws",
        2,
        "cannot reach the AWS endpoint http://127.0.0.1:",
    ),
    (
        "reconcile: routing config missing",
        "bridge",
        [
            "reconcile",
            "jira",
            *JIRA,
            "--state-table",
            "t",
            "--dry-run",
            "--routing-config",
            "/nonexistent.yaml",
        ],
        "aws",
        2,
        "/nonexistent.yaml: cannot read",
    ),
    (
        "reconcile: routing config not UTF-8",
        "bridge",
        ["reconcile", "jira", *JIRA, "--state-table", "t", "--dry-run", "--routing-config", "{latin1}"],
        "aws",
        2,
        "not UTF-8 text",
    ),
    (
        "reconcile: huge lookback",
        "bridge",
        ["reconcile", "jira", "--lookback-minutes", "99999999999999999999"],
        "aws",
        2,
        "must be a whole number >= 1 and <= 1000000",
    ),
    (
        "serve: endless duration",
        "bridge",
        ["serve", "--duration", "inf"],
        "aws",
        2,
        "must be more than 0 and at most",
    ),
    ("sandbox: port out of range", "sandbox", ["--port", "99999"], "aws", 2, "a port is 0"),
    ("sandbox: port not a number", "sandbox", ["--port", "x"], "aws", 2, "not a port number"),
    ("sandbox: script word", "sandbox", ["--script", "503,foo"], "aws", 2, "script entry 2 is 'foo'"),
    ("sandbox: script status", "sandbox", ["--script", "700"], "aws", 2, "script entry 1 is '700'"),
    ("sandbox: fault rate", "sandbox", ["--fault-rate", "2"], "aws", 2, "between 0 and 1"),
    ("sandbox: fault statuses", "sandbox", ["--fault-statuses", "429,x"], "aws", 2, "'x' is not an HTTP"),
    ("sandbox: drop rate", "sandbox", ["--drop-rate", "-1"], "aws", 2, "between 0 and 1"),
    ("sandbox: latency", "sandbox", ["--latency-ms", "-5"], "aws", 2, "latency must be >= 0"),
    ("sandbox: retry after", "sandbox", ["--retry-after", "-1"], "aws", 2, "retry_after must be >= 0"),
    ("sandbox: unknown option", "sandbox", ["--faults"], "aws", 2, "unrecognized arguments: --faults"),
    ("sandbox: port in use", "sandbox", ["--port", "{busy}"], "aws", 2, "cannot listen on 127.0.0.1:"),
]
PREFIX = {"bridge": "kantata-bridge: error: ", "sandbox": "kantata-sandbox: error: "}


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


def bare_aws_env(tmp_path: Path) -> dict[str, str]:
    """The environment without any AWS setting: no region, no credentials, no config files, no IMDS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def set_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str) -> None:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name in ("STATE_TABLE", "QUEUE_URL", "DEAD_LETTER_QUEUE_URL", "ROUTING_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ROUTING_CONFIG_PARAMETER", raising=False)
    for name, value in bare_aws_env(tmp_path).items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    if kind in ("aws", "moto", "moto+ssm"):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    if kind == "moto+ssm":
        monkeypatch.setenv("ROUTING_CONFIG_PARAMETER", "/bridge/routing")
    monkeypatch.setenv("BAD_SECRETS", "not json")
    monkeypatch.setenv("ODD_TOKEN", "tök€n")


def assert_one_clear_error(tool: str, code: int, out: str, err: str, expected_code: int, words: str) -> None:
    lines = err.splitlines()
    assert code == expected_code, err
    assert "Traceback" not in err
    assert 1 <= len(lines) <= 2, err
    assert lines[0].startswith(PREFIX[tool]), err
    assert words in err
    assert out == ""


@pytest.mark.parametrize(
    ("tool", "argv", "kind", "expected_code", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_is_one_clear_error_with_the_documented_exit_code(
    tool, argv, kind, expected_code, words, capsys, monkeypatch, tmp_path, busy_port
):
    # Given the environment of the case and its placeholders filled in
    set_environment(monkeypatch, tmp_path, kind)
    bad_config = tmp_path / "routing.yaml"
    bad_config.write_text("routes:\n  - {tracker: github, repository: acme/webapp, workspace_id: abc}\n")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("routes: []  # caf\u00e9\n".encode("latin-1"))
    values = {
        "closed": str(free_port()),
        "busy": str(busy_port),
        "bad_config": str(bad_config),
        "latin1": str(latin1),
    }
    argv = [a.format(**values) if "{" in a else a for a in argv]
    entry: Callable[[list[str]], int] = bridge_main if tool == "bridge" else sandbox_main
    # When the command runs
    if kind.startswith("moto"):
        with mock_aws():
            code = entry(argv)
    else:
        code = entry(argv)
    # Then it ends with one clear error line (and at most a hint) and the documented exit code
    printed = capsys.readouterr()
    assert_one_clear_error(tool, code, printed.out, printed.err, expected_code, words)


# --------------------------------------------------------------------------- as real processes

BRIDGE = [sys.executable, "-m", "kantata_bridge_cli"]
SANDBOX = [sys.executable, "-m", "kantata_sandbox.server"]

# (case id, command, exit code, words the error must contain, stdout closed before the command writes)
PROCESS_CASES = [
    (
        "explain | head (broken pipe)",
        [*BRIDGE, "explain", *RAW, "--config", EXAMPLE],
        1,
        "broken pipe",
        True,
    ),
    ("kantata-sandbox | head (broken pipe)", [*SANDBOX, "--port", "0"], 1, "broken pipe", True),
    ("kantata-sandbox --port 99999", [*SANDBOX, "--port", "99999"], 2, "a port is 0", False),
    ("kantata-sandbox --script 503,foo", [*SANDBOX, "--script", "503,foo"], 2, "'foo'", False),
    ("kantata-bridge serve --port 99999", [*BRIDGE, "serve", "--port", "99999"], 2, "a port is 0", False),
    ("explain without a region", [*BRIDGE, "explain", *RECORDED], 2, "no AWS region", False),
    (
        "link list without a token",
        [*BRIDGE, "link", "list", "--token-env", "NO_SUCH_TOKEN_VARIABLE"],
        2,
        "set the Kantata token",
        False,
    ),
]


@pytest.mark.parametrize(
    ("command", "expected_code", "words", "close_stdout"),
    [pytest.param(*case[1:], id=case[0]) for case in PROCESS_CASES],
)
def test_a_process_ends_with_one_clear_error_and_the_documented_exit_code(
    command, expected_code, words, close_stdout, tmp_path
):
    # Given a bare environment (no AWS configuration), and for a broken pipe a stdout nobody reads
    tool = "sandbox" if "kantata_sandbox.server" in command else "bridge"
    process = subprocess.Popen(  # noqa: S603 - our own commands
        command,
        cwd=ROOT,
        env=bare_aws_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    if close_stdout:
        process.stdout.close()  # as `| head` does once it has read enough; the command has not written yet
    # When it runs to its end
    try:
        err = process.stderr.read()
        code = process.wait(timeout=60)
    finally:
        process.kill()
    out = "" if close_stdout else process.stdout.read()
    # Then: one clear error line (and at most a hint), the documented exit code, no traceback
    assert_one_clear_error(tool, code, out, err, expected_code, words)


@pytest.mark.parametrize(
    ("entry", "prog"), [(bridge_main, "kantata-bridge"), (sandbox_main, "kantata-sandbox")]
)
def test_version_is_the_package_version(entry, prog, capsys):
    from importlib.metadata import version

    assert entry(["--version"]) == 0
    assert capsys.readouterr().out == f"{prog} {version('kantata-bridge')}\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["explain", "--help"],
        ["redrive", "--help"],
        ["demo", "--help"],
        ["serve", "--help"],
        ["link", "--help"],
        ["link", "add", "--help"],
        ["catalog", "--help"],
        ["recover", "--help"],
        ["recover", "github", "--help"],
        ["reconcile", "--help"],
        ["reconcile", "jira", "--help"],
    ],
)
def test_help_ends_with_examples_and_exit_codes(argv, capsys):
    assert bridge_main(argv) == 0
    text = capsys.readouterr().out
    examples = text.split("\nexamples:\n", 1)[1]
    assert "  kantata-bridge " in examples
    assert "exit codes: 0 " in examples


def test_sandbox_help_ends_with_examples(capsys):
    assert sandbox_main(["--help"]) == 0
    examples = capsys.readouterr().out.split("\nexamples:\n", 1)[1]
    assert "kantata-sandbox --script 503,503,none,drop" in examples


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_an_output_that_cannot_be_written_is_one_clear_error(tmp_path):
    # Given a command whose data goes to a device that is always full
    command = [
        *BRIDGE,
        "catalog",
        "from-linear",
        str(ROOT / "events" / "payloads" / "linear-workflow-states.json"),
    ]
    with open("/dev/full", "w") as full:
        # When it writes its output
        done = subprocess.run(  # noqa: S603 - our own command
            [*command, "--set-name", "ENG workflow"],
            cwd=ROOT,
            env=bare_aws_env(tmp_path),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    # Then it says so in one line and exits 1, without a traceback
    assert_one_clear_error("bridge", done.returncode, "", done.stderr, 1, "the output could not be written")


def test_a_redrive_dry_run_says_which_source_it_skips(capsys, monkeypatch, tmp_path):
    # Given only the events queue (no dead-letter queue, no state table)
    set_environment(monkeypatch, tmp_path, "aws")
    # When a dry run lists what a redrive would do
    code = bridge_main(["redrive", *QUEUE, "--dry-run"])
    # Then it says both sources are skipped, as the redrive itself would
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert printed.out.splitlines() == [
        "dead-letter queue: not given (--dead-letter-queue-url / --stack-name); skipped",
        "parked deliveries: no state table (--state-table / --stack-name); skipped",
    ]
