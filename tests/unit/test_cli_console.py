"""The command-line conventions every tool shares (kantata_bridge_cli.console)."""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys

import pytest
from kantata_bridge.observability import logger as bridge_logger
from kantata_bridge_cli import console


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("8787", 8787), ("65535", 65535)],
)
def test_port_number_accepts_0_to_65535(text, expected):
    assert console.port_number(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("99999", "a port is 0 (any free port) to 65535; got 99999"),
        ("-1", "a port is 0 (any free port) to 65535; got -1"),
        ("http", "not a port number: 'http'"),
        ("", "not a port number: ''"),
    ],
)
def test_port_number_refuses_what_cannot_be_bound(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        console.port_number(text)


@pytest.mark.parametrize("text", ["0", "-1", "nan", "soon"])
def test_positive_number_refuses_zero_negative_and_words(text):
    with pytest.raises(argparse.ArgumentTypeError):
        console.positive_number(text)


def test_positive_number_takes_fractions():
    assert console.positive_number("2.5") == 2.5


@pytest.mark.parametrize(
    ("raised", "code", "stderr"),
    [
        (console.CliError("no queue"), 2, "tool: error: no queue\n"),
        (
            console.CliError("no region", hint="Pass --region."),
            2,
            "tool: error: no region\nPass --region.\n",
        ),
        (console.CliError("refused", exit_code=1), 1, "tool: error: refused\n"),
        (SystemExit(0), 0, ""),
        (SystemExit(2), 2, ""),
        (SystemExit(None), 0, ""),
        (KeyboardInterrupt(), 130, "tool: interrupted\n"),
        (
            BrokenPipeError(),
            1,
            "tool: error: the output was closed before everything was written (broken pipe)\n",
        ),
    ],
)
def test_run_main_turns_each_ending_into_its_exit_code_and_one_line(raised, code, stderr, capsys):
    def body() -> int:
        raise raised

    assert console.run_main("tool", body) == code
    assert capsys.readouterr().err == stderr


def test_run_main_returns_the_body_code(capsys):
    assert console.run_main("tool", lambda: 1) == 1
    assert capsys.readouterr().err == ""


def test_usage_error_is_two_lines_not_the_whole_usage(capsys):
    parser = console.ArgumentParser(prog="kantata-bridge explain")
    parser.add_argument("--tracker", required=True)
    for n in range(12):
        parser.add_argument(f"--option-{n}")
    with pytest.raises(SystemExit) as stopped:
        parser.parse_args([])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "kantata-bridge: error: the following arguments are required: --tracker",
        "Try 'kantata-bridge explain --help'.",
    ]


def test_human_logging_sends_records_to_stderr_as_words_and_keeps_stdout_for_data(capsys):
    std = logging.getLogger(bridge_logger.name)
    json_handler = logging.StreamHandler(sys.stdout)  # as Powertools' handler: JSON lines on stdout
    listener = logging.StreamHandler(io.StringIO())  # another handler (the local stack listens like this)
    std.addHandler(json_handler)
    std.addHandler(listener)
    try:
        with console.human_logging("kantata-bridge"):
            bridge_logger.warning("Kantata call failed; retrying", extra={"status": 503, "attempt": 1})
            bridge_logger.info("a detail nobody asked for")
            print(json.dumps({"ok": True}))
        after = list(std.handlers)
    finally:
        std.removeHandler(json_handler)
        std.removeHandler(listener)
    printed = capsys.readouterr()
    assert json.loads(printed.out) == {"ok": True}
    assert printed.err == "kantata-bridge: warning: Kantata call failed; retrying (status=503, attempt=1)\n"
    assert "Kantata call failed" in listener.stream.getvalue()
    assert json_handler in after
    assert listener in after


def test_human_logging_holds_back_a_handler_whose_stream_is_closed(capsys):
    # A handler made while stdout was a stream that is closed now (Powertools takes sys.stdout when the logger is
    # built) would print "--- Logging error ---" and a traceback for every record.
    std = logging.getLogger(bridge_logger.name)
    closed = io.StringIO()
    closed.close()
    stale = logging.StreamHandler(closed)
    std.addHandler(stale)
    try:
        with console.human_logging("kantata-bridge"):
            bridge_logger.warning("Kantata call failed; retrying")
        assert stale in std.handlers
    finally:
        std.removeHandler(stale)
    assert capsys.readouterr().err == "kantata-bridge: warning: Kantata call failed; retrying\n"


def test_human_logging_writes_the_kantata_clients_retry_record_as_a_sentence(capsys):
    with console.human_logging("kantata-bridge"):
        bridge_logger.warning(
            "Kantata call failed; retrying",
            extra={
                "kantata_method": "GET",
                "kantata_path": "/external_references",
                "kantata_status": 503,
                "error_type": "UnavailableError",
                "attempt": 2,
                "retry_delay_s": 0.84,
            },
        )
    assert capsys.readouterr().err == (
        "kantata-bridge: warning: Kantata GET /external_references failed (503, unavailable); retry 2 in 0.8 s\n"
    )
