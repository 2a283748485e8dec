"""`kantata-bridge demo`: one command runs the sample deliveries through the whole local pipeline."""

from __future__ import annotations

import threading

import pytest
from kantata_bridge_dev.cli import main as cli

pytestmark = pytest.mark.e2e


def test_demo_prints_reports_and_every_delivery_outcome_and_exits_0(tmp_path, capsys):
    # Given no AWS account and no running service
    before = set(threading.enumerate())
    # When the demo runs
    code = cli(["demo", "--log-file", str(tmp_path / "demo.log")])
    out = capsys.readouterr().out
    # Then it exits 0 and shows the reports Kantata got and what became of each delivery
    assert code == 0
    reports, deliveries = out.split("Kantata status reports created", 1)[1].split("\nDeliveries\n", 1)
    assert "acme/webapp#42" in reports
    assert "PROJ-12" in reports
    outcomes = [line for line in deliveries.splitlines() if line.startswith(("github_", "jira_"))]
    assert len(outcomes) == 12
    text = "\n".join(outcomes)
    assert text.count(" posted ") == 7
    assert "duplicate: already processed" in text
    assert "stale: version" in text
    assert " ignored " in text
    assert " 401 " in text
    # And the functions' logs went to the log file, not the terminal
    assert '"message":"delivery outcome"' in (tmp_path / "demo.log").read_text()
    assert '"level"' not in out
    # And nothing it started is left running
    for thread in [t for t in threading.enumerate() if t not in before]:
        thread.join(timeout=5)
    assert [t.name for t in threading.enumerate() if t not in before and t.is_alive()] == []
