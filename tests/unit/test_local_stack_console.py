"""What the local stack prints: the demo's tables and serve's lines (no stack needed)."""

from __future__ import annotations

import io
import shlex
from pathlib import Path

import pytest
from kantata_bridge_dev.local_stack import (
    DeadLetter,
    ServeConsole,
    StackCommands,
    WorkerOutcome,
    format_table,
)
from kantata_sandbox.faults import FaultPlanError, parse_script

STALE = (
    "stale: version 2026-11-20T14:05:12.345000+00:00 is not newer than 2026-11-21T17:01:30.500000+00:00 "
    "(delivery jira:-:8f3a2b1c-4d5e-4f60-9a7b-000000010003)"
)
COMMANDS = StackCommands(
    endpoint_url="http://127.0.0.1:41234",
    queue_url="http://127.0.0.1:41234/123456789012/kantata-bridge-local-events",
    dead_letter_queue_url="http://127.0.0.1:41234/123456789012/kantata-bridge-local-dlq",
    state_table="kantata-bridge-local-state",
    routing_config=Path("config/local-routing.yaml"),
)


def unwrap(text: str) -> list[list[str]]:
    """Rows of a table whose last column may wrap onto continuation lines (first column blank)."""
    lines = text.splitlines()
    _header, dashes, *rows = lines
    starts = [i for i, c in enumerate(dashes) if c == "-" and (i == 0 or dashes[i - 1] == " ")]
    out: list[list[str]] = []
    for row in rows:
        cells = [row[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        if out and not any(cells[:-1]):
            out[-1][-1] += " " + cells[-1]
        else:
            out.append(cells)
    return out


@pytest.mark.parametrize(
    ("headers", "width"),
    [
        (["delivery", "note", "HTTP", "outcome", "reason / report"], 120),  # the demo's deliveries
        (["delivery", "HTTP", "outcome", "reason / report"], 100),
        (["note", "reason / report"], 70),
    ],
)
def test_a_long_last_cell_wraps_within_the_width_and_is_never_cut(headers, width):
    full = [
        ["jira_issue_updated_in_progress", "older, sent late", "202", "skipped", STALE],
        ["a", "", "200", "ok", "ping"],
    ]
    rows = [row[-len(headers) :] for row in full]
    text = format_table(headers, rows, width=width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert len(text.splitlines()) > len(rows) + 2  # it did wrap
    assert unwrap(text) == rows


def test_clipped_last_cell_fits_the_width_and_says_it_was_cut():
    text = format_table(["id", "description"], [["1", "x" * 200]], width=40, wrap=False)
    lines = text.splitlines()
    assert max(len(line) for line in lines) == 40
    assert lines[-1].endswith("…")


def test_without_a_width_the_table_keeps_every_cell_whole():
    text = format_table(["a", "b"], [["1", STALE]])
    assert text.splitlines()[-1] == "1  " + STALE


def test_explain_command_for_a_dedupe_key_names_tracker_hook_and_delivery():
    line = COMMANDS.explain_key("github:498765432:8c2a4e10-c6ae", indent="").replace("\\\n", " ")
    argv = shlex.split(line)
    assert argv[:2] == ["kantata-bridge", "explain"]
    assert argv[argv.index("--endpoint-url") + 1] == "http://127.0.0.1:41234"
    assert argv[argv.index("--region") + 1] == "us-east-1"
    assert argv[argv.index("--state-table") + 1] == "kantata-bridge-local-state"
    assert argv[argv.index("--config") + 1] == "config/local-routing.yaml"
    assert argv[-6:] == ["--tracker", "github", "--delivery-id", "8c2a4e10-c6ae", "--hook-id", "498765432"]


def test_explain_command_leaves_out_a_missing_hook_id():
    argv = shlex.split(COMMANDS.explain_key("jira:-:8f3a-0001", indent="").replace("\\\n", " "))
    assert argv[-4:] == ["--tracker", "jira", "--delivery-id", "8f3a-0001"]


def test_redrive_command_names_the_source():
    argv = shlex.split(COMMANDS.redrive("parked", indent="").replace("\\\n", " "))
    assert argv[:2] == ["kantata-bridge", "redrive"]
    assert argv[argv.index("--source") + 1] == "parked"
    assert argv[argv.index("--method") + 1] == "manual"
    assert argv[argv.index("--state-table") + 1] == "kantata-bridge-local-state"


def commands_in(text: str) -> list[list[str]]:
    """The kantata-bridge commands in printed text, continuation lines joined."""
    joined = text.replace("\\\n", " ")
    return [
        shlex.split(line.strip())
        for line in joined.splitlines()
        if line.strip().startswith("kantata-bridge ")
    ]


def test_a_parked_outcome_says_what_to_run_next():
    out = io.StringIO()
    ServeConsole(COMMANDS, out).outcome(
        WorkerOutcome("jira:-:8f3a-0001", "parked", "kantata 422: workspace_id: not found")
    )
    text = out.getvalue()
    assert "outcome parked   jira:-:8f3a-0001  kantata 422: workspace_id: not found" in text
    explain, redrive = commands_in(text)
    assert explain[1] == "explain"
    assert explain[-4:] == ["--tracker", "jira", "--delivery-id", "8f3a-0001"]
    assert redrive[1] == "redrive"
    assert redrive[redrive.index("--source") + 1] == "parked"


def test_a_posted_outcome_is_one_line():
    out = io.StringIO()
    ServeConsole(COMMANDS, out).outcome(WorkerOutcome("github:-:x", "posted", "posted", report_id="41003"))
    assert out.getvalue().count("\n") == 1
    assert out.getvalue().endswith("outcome posted   github:-:x  report 41003\n")


def test_a_dead_lettered_delivery_says_how_to_move_it_back():
    out = io.StringIO()
    ServeConsole(COMMANDS, out).dead_lettered(DeadLetter("github:7:abc", 3))
    text = out.getvalue()
    assert "dead-lettered github:7:abc  after 3 failed attempts" in text
    explain, redrive = commands_in(text)
    assert explain[-6:] == ["--tracker", "github", "--delivery-id", "abc", "--hook-id", "7"]
    assert redrive[redrive.index("--source") + 1] == "dlq"


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError


def test_a_closed_stdout_stops_the_printing_instead_of_failing_the_caller():
    console = ServeConsole(COMMANDS, ClosedPipe())
    console.outcome(WorkerOutcome("github:-:x", "posted", "posted"))  # no exception into the worker's thread
    assert console.closed.is_set()


@pytest.mark.parametrize(
    ("text", "entries"),
    [
        ("503,503,none,drop", [503, 503, None, "drop"]),
        ("429, ok ,-,drop_after", [429, None, None, "drop_after"]),
        ("", [None]),
    ],
)
def test_sandbox_script_text_becomes_fault_entries(text, entries):
    assert parse_script(text) == entries


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("503,foo", "script entry 2 is 'foo'"),
        ("700", "script entry 1 is '700'"),
        ("99", "script entry 1 is '99'"),
        ("503,-1", "script entry 2 is '-1'"),
    ],
)
def test_sandbox_script_names_the_bad_entry(text, message):
    with pytest.raises(FaultPlanError, match=message):
        parse_script(text)
