"""Jira reconciliation with the real handlers: the fake Jira sends webhooks over HTTP to the local stack (real
receiver, moto server, real worker, Kantata sandbox) until an outage outlasts its retries; the real
jira_reconcile Lambda handler then searches the fake's JQL API and queues what the bridge missed."""

from __future__ import annotations

import collections
import json

import pytest
from kantata_bridge.reconcile.jira import synthesize
from kantata_bridge_dev.local_stack import LocalStack
from moto import mock_aws

from tests.support.convergence import (
    JIRA_SECRET,
    Context,
    clear_powertools_caches,
    create_secret,
    emitted_metrics,
    load_function,
)
from tests.support.worker_env import SqsSimulator, WorkerHarness, fake_aws_env, load_handler

pytestmark = pytest.mark.integration


@pytest.fixture
def stack():
    with LocalStack(visibility_timeout=1, max_receive_count=3) as running:
        clear_powertools_caches()
        yield running
    clear_powertools_caches()


@pytest.fixture
def jira(stack, fake_jira, monkeypatch):
    fake_jira.set_webhook(stack.webhook_url("jira"), JIRA_SECRET)
    credentials = json.dumps({"email": fake_jira.email, "api_token": fake_jira.api_token})
    secret = create_secret(stack, "bridge/jira-credentials", credentials)
    for name, value in {
        "JIRA_BASE_URL": fake_jira.url,
        "JIRA_CREDENTIALS_SECRET_NAME": secret,
        # The fake's changes happen now; nothing is left to settle in a test.
        "JIRA_RECONCILE_SETTLE_MINUTES": "0",
    }.items():
        monkeypatch.setenv(name, value)
    return fake_jira


def report_refs(stack):
    state = stack.sandbox.state
    refs = {
        str(r.subject_id): r
        for r in state.external_references.values()
        if r.subject_type.lower() == "statusreport"
    }
    return [(refs[str(report.id)].service_model_ref, report) for report in state.status_reports.values()]


def reconcile(**event):
    return load_function("jira_reconcile").lambda_handler(event, Context())


def test_a_sweep_after_an_outage_posts_exactly_the_missed_changes_and_none_that_arrived(stack, jira):
    # Given ten issues whose creation reached the bridge (ten reports)
    for n in range(1, 11):
        jira.create_issue(f"PROJ-{n}", f"Issue {n}")
    assert stack.wait_until_drained(30)
    assert len(report_refs(stack)) == 10
    first_sweep = reconcile()  # the first sweep finds everything applied already
    assert first_sweep["ok"] is True, first_sweep
    assert first_sweep["enqueued"] == 0
    assert first_sweep["up_to_date"] == 10
    # And an outage longer than Jira's retries, during which four issues change (one of them twice)
    jira.webhook_faults.set_drop_rate(1.0)
    for n in (1, 2, 3, 4):
        jira.update_issue(f"PROJ-{n}", status="Done")
    jira.update_issue("PROJ-4", summary="Issue 4, renamed")
    lost = [
        a
        for a in jira.webhook_attempts
        if a.key in {"PROJ-1", "PROJ-2", "PROJ-3", "PROJ-4"} and a.event.endswith("updated")
    ]
    assert len(lost) == 5 * (jira.webhook_retries + 1)
    assert all(a.status == 0 for a in lost)
    # And after it, one more change that reaches the bridge
    jira.webhook_faults.set_drop_rate(0.0)
    jira.update_issue("PROJ-6", status="In Progress")
    assert stack.wait_until_drained(30)
    assert len(report_refs(stack)) == 11
    # When the reconciliation runs
    summary = reconcile()
    assert stack.wait_until_drained(30)
    # Then it queued exactly the four issues whose newest state the bridge never saw
    assert summary["ok"] is True, summary
    assert summary["enqueued"] == 4
    assert sorted(i["key"] for i in summary["issues"] if i["result"] == "enqueued") == [
        f"PROJ-{n}" for n in (1, 2, 3, 4)
    ]
    # And Kantata got one new report for each of them, showing its newest state, and nothing else
    counts = collections.Counter(ref for ref, _ in report_refs(stack))
    assert counts == collections.Counter(
        {**{f"PROJ-{n}": 1 for n in range(1, 11)}, **{f"PROJ-{n}": 2 for n in (1, 2, 3, 4, 6)}}
    )
    newest = {ref: r for ref, r in sorted(report_refs(stack), key=lambda p: int(p[1].id))}
    assert "Issue 4, renamed" in newest["PROJ-4"].description
    # And each reconciled delivery's outcome is posted and marked as reconciled
    store = stack.outcome_store()
    for row in (i for i in summary["issues"] if i["result"] == "enqueued"):
        outcome = store.get(f"jira:-:{row['delivery_id']}")
        assert outcome is not None
        assert (outcome.kind.value, outcome.origin) == ("posted", "reconciled"), outcome

    # When it runs again
    again = reconcile()
    assert stack.wait_until_drained(30)
    # Then nothing is queued: the bridge holds every issue's newest version
    assert again["ok"] is True, again
    assert again["enqueued"] == 0
    assert len(report_refs(stack)) == 15


def test_a_dry_run_lists_the_missed_changes_and_queues_nothing(stack, jira):
    jira.webhook_faults.set_drop_rate(1.0)
    jira.create_issue("PROJ-1", "Never seen")
    summary = reconcile(dry_run=True)
    assert [(i["key"], i["result"]) for i in summary["issues"]] == [("PROJ-1", "would enqueue")]
    assert stack.wait_until_drained(30)
    assert report_refs(stack) == []
    # and a real run afterwards still finds it (the checkpoint did not move)
    assert reconcile()["enqueued"] == 1


def test_a_search_jira_refuses_fails_the_run_and_keeps_the_checkpoint(stack, jira):
    jira.faults.script([401], path_prefix="/rest/api/3/search/jql")
    summary = reconcile()
    assert summary["ok"] is False
    assert "401" in summary["error"]
    assert summary["checkpoint_advanced"] is False
    assert jira.api_token not in json.dumps(summary)


def test_only_the_routed_projects_are_searched(stack, jira):
    jira.webhook_faults.set_drop_rate(1.0)
    jira.create_issue("OTHER-1", "Not routed")
    jira.create_issue("PROJ-2", "Routed")
    summary = reconcile()
    assert summary["projects"] == ["PROJ"]
    assert 'project in ("PROJ")' in summary["jql"]
    assert [i["key"] for i in summary["issues"]] == ["PROJ-2"]


# ---------------------------------------------------------------------- a webhook and a sweep for one change


@pytest.fixture
def aws(monkeypatch):
    fake_aws_env(monkeypatch.setenv)
    with mock_aws():
        yield


@pytest.mark.parametrize("sweep_first", [True, False])
def test_a_webhook_still_queued_and_the_sweeps_copy_of_the_same_change_post_once(
    aws, kantata_sandbox, fake_jira, tmp_path, sweep_first
):
    # Given one change of PROJ-12 as the webhook body Jira sent and as the sweep's synthetic delivery
    from tests.support.worker_env import envelope_for

    issue = fake_jira.create_issue("PROJ-12", "Checkout fails", send_webhook=False)
    fake_jira.update_issue("PROJ-12", status="Done", send_webhook=False)
    webhook_body = json.loads(fake_jira.webhook_body("jira:issue_updated", issue, ("To Do", "Done")))
    webhook = envelope_for("jira_issue_updated_done", edit=lambda doc: doc.update(webhook_body))
    searched = dict(webhook_body["issue"])
    synthetic = synthesize(searched, "2026-11-22T12:00:00.000Z").envelope
    assert webhook.dedupe_key != synthetic.dedupe_key
    with WorkerHarness(kantata_sandbox, tmp_path) as harness:
        queue = SqsSimulator(load_handler().lambda_handler, batch_size=1)
        # When both reach the worker, in either order
        messages = [synthetic.to_message(), webhook.to_message()]
        queue.send(messages if sweep_first else messages[::-1])
        queue.drain()
        # Then Kantata gets one report, and the other delivery is skipped as stale
        assert len(harness.posts()) == 1
        outcomes = [harness.outcomes().get(e.dedupe_key) for e in (synthetic, webhook)]
        assert [o.kind.value for o in outcomes] == (
            ["posted", "skipped"] if sweep_first else ["skipped", "posted"]
        )
        assert outcomes[0].origin == "reconciled"
        assert outcomes[1].origin is None


def test_the_function_counts_what_it_reconciled(stack, jira, capsys):
    import os

    from kantata_bridge.observability import metrics

    jira.webhook_faults.set_drop_rate(1.0)
    jira.create_issue("PROJ-1", "Missed")
    metrics.clear_metrics()
    saved = os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)  # the local stack turns metrics off
    try:
        capsys.readouterr()
        summary = reconcile()
        found = emitted_metrics(capsys.readouterr().out)
    finally:
        if saved is not None:
            os.environ["POWERTOOLS_METRICS_DISABLED"] = saved
    assert summary["enqueued"] == 1
    assert (found["IssuesReconciled"], found["ReconcileRunFailed"]) == (1, 0)
