"""The demo's convergence act on a real local stack: a GitHub delivery dropped before the receiver is recovered,
a Jira change lost to an outage is reconciled, and both end as Kantata reports."""

from __future__ import annotations

import pytest
from kantata_bridge_dev.demo_convergence import Convergence, ConvergenceRow, run_convergence
from kantata_bridge_dev.local_stack import LocalStack

pytestmark = pytest.mark.e2e


def test_the_convergence_act_posts_the_recovered_delivery_and_the_reconciled_change():
    # Given the local stack
    with LocalStack(visibility_timeout=1, max_receive_count=2) as stack:
        # When the act runs
        result = run_convergence(stack, timeout=60)
        reports = {r.id: r for r in stack.sandbox.state.status_reports.values()}
    # Then both changes that never reached the bridge ended as posted reports
    assert result.ok, (result.rows, result.errors)
    github, jira = result.rows
    assert (github.tracker, github.found_by, github.outcome) == ("github", "recovery: redelivered", "posted")
    assert (jira.tracker, jira.found_by, jira.outcome) == (
        "jira",
        "reconciliation: queued (reconciled)",
        "posted",
    )
    for row, ref_text in ((github, "acme/webapp#77"), (jira, "PROJ-77")):
        report = reports[row.detail.removeprefix("report ")]
        assert ref_text in report.description
    assert "Done" in reports[jira.detail.removeprefix("report ")].description
    # And the table says so
    assert "Changes that never reached the bridge, recovered" in result.text()


def test_the_act_is_not_ok_unless_both_were_posted():
    posted = ConvergenceRow("github", "c", "lost", "found", "posted", "report 1")
    pending = ConvergenceRow("jira", "c", "lost", "found", "pending", "no outcome yet")
    assert Convergence([posted, posted]).ok
    assert not Convergence([posted, pending]).ok
    assert not Convergence([posted]).ok
    assert not Convergence([posted, posted], errors=["boom"]).ok
