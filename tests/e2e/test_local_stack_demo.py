"""`kantata-bridge demo`: one command runs the sample deliveries through the whole local pipeline."""

from __future__ import annotations

import re
import threading

import pytest
from kantata_bridge_cli.main import main as cli
from kantata_bridge_dev.local_stack import LocalStack, story_refs

pytestmark = pytest.mark.e2e

# (delivery, note) -> (HTTP status, outcome): the table docs/local-stack.md promises.
EXPECTED = {
    ("github_ping", ""): ("200", "ok"),
    ("github_issues_opened", ""): ("202", "posted"),
    ("github_issues_labeled_blocked", ""): ("202", "posted"),
    ("github_pull_request_opened", ""): ("202", "posted"),
    ("github_pull_request_closed_merged", ""): ("202", "posted"),
    ("github_issues_closed", ""): ("202", "posted"),
    ("github_issues_opened", "redelivered"): ("202", "skipped"),
    ("github_push", "not subscribed"): ("200", "ignored"),
    ("jira_issue_created", ""): ("202", "posted"),
    ("jira_issue_updated_done", "newer, sent first"): ("202", "posted"),
    ("jira_issue_updated_in_progress", "older, sent late"): ("202", "skipped"),
    ("gitlab_issue_labeled_in_review", ""): ("202", "posted"),
    ("linear_issue_in_progress", ""): ("202", "posted"),
    ("jira_issue_created", "forged signature"): ("401", "rejected"),
}
# One row per delivery whose task sync found the object's linked task, in delivery order: (object, from, to).
# The GitHub workspace has Kantata's four default statuses; the Jira and Linear workspaces have sets mirroring
# the sample workflows; the GitLab route maps "in review" with task_statuses.
EXPECTED_TASKS = [
    ("acme/webapp#42", "not started", "not started"),  # opened: only the reference gets the tracker's status
    ("acme/webapp#42", "not started", "not started"),  # labelled blocked: nothing to write
    ("acme/webapp#43", "not started", "not started"),
    ("acme/webapp#43", "not started", "completed"),  # merged
    (
        "acme/webapp#42",
        "not started",
        "completed",
    ),  # closed (the redelivered "opened" is a duplicate: no row)
    ("PROJ-12", "To Do", "To Do"),
    ("PROJ-12", "To Do", "Done"),  # the newer update; the older one, skipped as stale, moves nothing back
    ("acme/platform/checkout#12", "not started", "started"),
    ("ENG-123", "Triage", "In Progress"),
]


def parse_table(text: str) -> list[dict[str, str]]:
    """Rows of a fixed-width table printed by the demo (columns located by the dashes under the header; a
    line whose other columns are blank continues the last column of the row above)."""
    lines = text.strip("\n").splitlines()
    header, dashes, *rows = lines
    spans = [m.span() for m in re.finditer(r"-+", dashes)]
    spans[-1] = (spans[-1][0], None)  # the last column is not padded
    names = [header[a:b].strip() for a, b in spans]
    parsed: list[dict[str, str]] = []
    for row in (r for r in rows if r):
        cells = {n: row[a:b].strip() for n, (a, b) in zip(names, spans, strict=True)}
        if parsed and not any(cells[n] for n in names[:-1]):
            parsed[-1][names[-1]] += " " + cells[names[-1]]
        else:
            parsed.append(cells)
    return parsed


def sent_lines(text: str) -> list[list[str]]:
    """The demo's "  sent <delivery>  <delivery id>  <HTTP status>  <status>" lines, split."""
    return [line.split()[1:] for line in text.splitlines() if line.startswith("  sent ")]


def test_demo_prints_reports_and_every_delivery_outcome_and_exits_0(tmp_path, capsys, monkeypatch):
    # Given no AWS account and no running service
    before = set(threading.enumerate())
    final_statuses: dict[str, str] = {}
    final_refs: dict[str, str] = {}
    stop = LocalStack.stop

    def stop_after_reading_the_tasks(stack: LocalStack) -> None:
        # Kantata's tasks as the demo leaves them, read from the sandbox just before it stops
        if stack.sandbox is not None:
            final_statuses.update({s.id: s.status for s in stack.sandbox.state.stories.values()})
            final_refs.update(story_refs(stack.sandbox))
        stop(stack)

    monkeypatch.setattr(LocalStack, "stop", stop_after_reading_the_tasks)
    # When the demo runs
    code = cli(["demo", "--log-file", str(tmp_path / "demo.log")])
    out = capsys.readouterr().out
    # Then it exits 0 and shows the reports Kantata got and what became of each delivery
    assert code == 0
    reports_text, rest = out.split("Kantata status reports created\n", 1)[1].split("\nDeliveries\n", 1)
    deliveries_text = rest.split("\n\n", 1)[0]
    tasks_text = out.split("\nKantata tasks moved\n", 1)[1].split("\n\n", 1)[0]
    reports = parse_table(reports_text)
    deliveries = parse_table(deliveries_text)
    assert {r["external ref"] for r in reports} == {
        "acme/webapp#42",
        "acme/webapp#43",
        "PROJ-12",
        "acme/platform/checkout#12",
        "ENG-123",
    }
    workspaces = {r["external ref"]: r["workspace"] for r in reports}
    assert (workspaces["acme/platform/checkout#12"], workspaces["ENG-123"]) == (
        "Acme Platform",
        "Engineering (Linear)",
    )
    assert [(d["delivery"], d["note"]) for d in deliveries] == list(EXPECTED)
    for row in deliveries:
        assert (row["HTTP"], row["outcome"]) == EXPECTED[(row["delivery"], row["note"])], row
    text = deliveries_text
    assert "duplicate: already processed" in text
    assert "stale: version" in text
    # And every report a delivery row names is a report in Kantata's table, one per posted delivery
    named = [d["reason / report"].removeprefix("report ") for d in deliveries if d["outcome"] == "posted"]
    assert sorted(named) == sorted(r["id"] for r in reports)
    # And each delivery's whole id is shown as it is sent (Jira's differ only in their last digits), the
    # duplicate's the same as its first's, in the order of the table
    sent = sent_lines(out)
    assert [s[0] for s in sent] == [d["delivery"] for d in deliveries]
    assert [s[2] for s in sent] == [d["HTTP"] for d in deliveries]
    ids = [s[1] for s in sent]
    assert all(len(i) == 36 for i in ids)
    jira_ids = [i for s, i in zip(sent, ids, strict=True) if s[0].startswith("jira_")]
    assert len(set(jira_ids)) == len(jira_ids)
    assert ids[6] == ids[1]
    # And the tables fit a 120-column terminal without cutting the stale reason (it wraps)
    tables = out.split("Kantata status reports created\n", 1)[1]
    assert max(len(line) for line in tables.splitlines()) <= 120
    (stale,) = [d["reason / report"] for d in deliveries if d["note"] == "older, sent late"]
    assert re.fullmatch(r"stale: version \S+ is not newer than \S+ \(delivery jira:-:[0-9a-f-]{36}\)", stale)
    # And before the deliveries, the Jira and Linear workspaces got sets mirroring the sample workflows and each
    # sample object a linked task
    assert "  task status set 'PROJ workflow' (10 statuses, the sample Jira workflow) → Project PROJ\n" in out
    assert (
        "  task status set 'ENG workflow' (9 statuses, the sample Linear workflow) → Engineering (Linear)\n"
        in out
    )
    assert (
        "  5 tasks linked: acme/webapp#42, acme/webapp#43, PROJ-12, acme/platform/checkout#12, ENG-123\n"
        in out
    )
    # And the linked tasks moved with their objects, one row per task sync in delivery order, with the reason
    tasks = parse_table(tasks_text)
    assert [(t["object"], t["from"], t["to"]) for t in tasks] == EXPECTED_TASKS
    why = {(t["object"], t["to"]): t["why"] for t in tasks}
    assert why["PROJ-12", "Done"] == "same name as jira's 'Done'"
    assert why["ENG-123", "In Progress"] == "same name as linear's 'In Progress'"
    assert why["acme/platform/checkout#12", "started"] == "route's task_statuses: 'in review'"
    assert why["acme/webapp#43", "completed"] == (  # wrapped onto two lines, not cut
        "no 'merged' in the four default statuses (no set assigned): default of category 'completed'"
    )
    assert [t["why"] for t in tasks[:2]] == [
        "already there; reference updated",
        "unchanged: already there, nothing written",
    ]
    # And each row names the task linked to its object, and that task is where the last row left it
    ids = {t["object"]: t["task"] for t in tasks}
    assert len(set(ids.values())) == 5
    assert all(ids[t["object"]] == t["task"] for t in tasks)
    assert final_statuses == {ids[ref]: to for ref, _, to in EXPECTED_TASKS}
    assert final_refs == {task: ref for ref, task in ids.items()}
    # And the functions' logs went to the log file, not the terminal
    assert '"message":"delivery outcome"' in (tmp_path / "demo.log").read_text()
    assert '"level"' not in out
    # And nothing it started is left running
    for thread in [t for t in threading.enumerate() if t not in before]:
        thread.join(timeout=5)
    assert [t.name for t in threading.enumerate() if t not in before and t.is_alive()] == []
