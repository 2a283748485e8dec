"""GitHub delivery recovery with the real handlers: the fake GitHub sends webhooks over HTTP to the local stack
(real receiver behind an API Gateway-shaped endpoint, moto server, real worker, Kantata sandbox); the real
delivery_recovery Lambda handler lists the hook's deliveries on the fake and asks it to redeliver."""

from __future__ import annotations

import collections

import pytest
from kantata_bridge.recovery import github_api
from kantata_bridge_dev.local_stack import LocalStack

from tests.support.convergence import (
    GITHUB_SECRET,
    Context,
    clear_powertools_caches,
    create_secret,
    emitted_metrics,
    github_issue_payload,
    load_function,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(monkeypatch):
    # GitHub asks for a second between writes; a test has no reason to wait for it.
    monkeypatch.setattr(github_api, "MIN_WRITE_INTERVAL", 0.0)
    with LocalStack(visibility_timeout=1, max_receive_count=3) as running:
        clear_powertools_caches()
        yield running
    clear_powertools_caches()


@pytest.fixture
def hook(stack, fake_github, monkeypatch):
    hook = fake_github.add_hook("acme/webapp", url=stack.webhook_url("github"), secret=GITHUB_SECRET)
    secret = create_secret(stack, "bridge/github-token", fake_github.token)
    for name, value in {
        "GITHUB_TOKEN_SECRET_NAME": secret,
        "GITHUB_RECOVERY_HOOKS": hook.path,
        "GITHUB_API_URL": fake_github.url,
    }.items():
        monkeypatch.setenv(name, value)
    return hook


def outcome_of(stack, hook, guid):
    return stack.outcome_store().get(f"github:{hook.hook_id}:{guid}")


def posted_refs(stack):
    """external references of the sandbox's status reports (one per report)."""
    state = stack.sandbox.state
    return [
        r.service_model_ref
        for r in state.external_references.values()
        if r.subject_type.lower() == "statusreport"
    ]


def test_every_delivery_dropped_before_the_receiver_is_recovered_and_posted_exactly_once(
    stack, fake_github, hook
):
    # Given 50 deliveries of 50 different issues, every fifth one (20 %) dropped before it reached the receiver
    fake_github.delivery_faults.script([None, None, None, None, "drop"] * 10)
    sent = [fake_github.send_event(hook.hook_id, "issues", github_issue_payload(100 + n)) for n in range(50)]
    dropped = [a for a in sent if not a.ok]
    assert len(dropped) == 10
    assert stack.wait_until_drained(30)
    assert len(posted_refs(stack)) == 40
    # When the recovery function runs
    app = load_function("delivery_recovery")
    summary = app.lambda_handler({}, Context())
    assert stack.wait_until_drained(30)
    # Then it redelivered exactly the ten dropped deliveries, and nothing it could not do is left
    assert summary["ok"] is True, summary
    assert summary["redelivered"] == 10
    assert sorted(c["guid"] for c in summary["candidates"]) == sorted(a.guid for a in dropped)
    redeliveries = [a for a in fake_github.deliveries(hook.hook_id) if a.redelivery]
    assert sorted(a.guid for a in redeliveries) == sorted(a.guid for a in dropped)
    assert all(a.ok for a in redeliveries)
    # And Kantata got one report per issue: the ten recovered ones once each, none of the others twice
    refs = collections.Counter(posted_refs(stack))
    assert refs == collections.Counter(f"acme/webapp#{100 + n}" for n in range(50))
    # And the bridge recorded each recovered delivery as posted, under GitHub's own delivery guid
    for attempt in dropped:
        outcome = outcome_of(stack, hook, attempt.guid)
        assert outcome is not None
        assert outcome.kind.value == "posted", outcome
        assert outcome.report_id

    # When the recovery runs again
    attempts_before = len(fake_github.deliveries())
    again = load_function("delivery_recovery").lambda_handler({}, Context())
    assert stack.wait_until_drained(30)
    # Then it redelivers nothing: every guid now has an OK attempt
    assert again["ok"] is True, again
    assert again["redelivered"] == 0
    assert again["candidates"] == []
    assert len(fake_github.deliveries()) == attempts_before
    assert len(posted_refs(stack)) == 50


def test_a_failed_delivery_the_bridge_has_a_record_of_is_not_redelivered(stack, fake_github, hook):
    # Given a delivery the receiver queued, but whose answer GitHub never saw (GitHub lists it as failed)
    fake_github.delivery_faults.script(["drop_after"])
    attempt = fake_github.send_event(hook.hook_id, "issues", github_issue_payload(7))
    assert not attempt.ok
    assert stack.wait_until_drained(30)
    assert outcome_of(stack, hook, attempt.guid) is not None
    # When the recovery runs
    summary = load_function("delivery_recovery").lambda_handler({}, Context())
    # Then it is left alone: the bridge has its outcome
    assert summary["redelivered"] == 0
    assert [(c["guid"], c["result"]) for c in summary["candidates"]] == [(attempt.guid, "recorded")]
    assert not [a for a in fake_github.deliveries() if a.redelivery]


def test_a_redelivery_that_fails_again_is_retried_by_the_next_run_up_to_the_limit(
    stack, fake_github, hook, monkeypatch
):
    # Given a delivery dropped, and a receiver that stays unreachable for the next two redeliveries
    monkeypatch.setenv("GITHUB_RECOVERY_MAX_REDELIVERIES", "2")
    monkeypatch.setenv("GITHUB_RECOVERY_OVERLAP_MINUTES", "60")
    fake_github.delivery_faults.script(["drop", "drop", "drop"])
    attempt = fake_github.send_event(hook.hook_id, "issues", github_issue_payload(8))
    app = load_function("delivery_recovery")
    results = []
    # When the recovery runs three times
    for _ in range(3):
        summary = app.lambda_handler({}, Context())
        results.append([(c["delivery_id"], c["result"]) for c in summary["candidates"]])
    # Then each run redelivers the latest failed attempt once, until the limit of two redeliveries
    attempts = fake_github.deliveries(hook.hook_id)
    assert [a.redelivery for a in attempts] == [False, True, True]
    assert results[0] == [(attempts[0].id, "redelivered")]
    assert results[1] == [(attempts[1].id, "redelivered")]
    assert results[2] == [(attempts[2].id, "gave up")]
    assert outcome_of(stack, hook, attempt.guid) is None


def test_a_dry_run_lists_what_it_would_redeliver_and_changes_nothing(stack, fake_github, hook):
    fake_github.delivery_faults.script(["drop"])
    attempt = fake_github.send_event(hook.hook_id, "issues", github_issue_payload(9))
    summary = load_function("delivery_recovery").lambda_handler({"dry_run": True}, Context())
    assert summary["dry_run"] is True
    assert [(c["guid"], c["result"]) for c in summary["candidates"]] == [(attempt.guid, "would redeliver")]
    assert len(fake_github.deliveries()) == 1
    # and the checkpoint did not move: a real run still finds it
    real = load_function("delivery_recovery").lambda_handler({}, Context())
    assert real["redelivered"] == 1


def test_two_runs_at_once_redeliver_each_delivery_once(stack, fake_github, hook):
    import threading

    fake_github.delivery_faults.script(["drop"] * 6)
    for n in range(6):
        fake_github.send_event(hook.hook_id, "issues", github_issue_payload(200 + n))
    summaries = []

    def run():
        summaries.append(load_function("delivery_recovery").lambda_handler({}, Context()))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert stack.wait_until_drained(30)
    assert sum(s["redelivered"] for s in summaries) == 6
    redelivered = [a.guid for a in fake_github.deliveries() if a.redelivery]
    assert len(redelivered) == len(set(redelivered)) == 6
    assert len(posted_refs(stack)) == 6


def test_an_unreadable_token_secret_fails_the_run_without_naming_the_value(
    stack, fake_github, hook, monkeypatch
):
    monkeypatch.setenv("GITHUB_TOKEN_SECRET_NAME", "no-such-secret")
    summary = load_function("delivery_recovery").lambda_handler({}, Context())
    assert summary["ok"] is False
    assert summary["error"] == "settings_invalid"
    assert "no-such-secret" in summary["message"]


def test_a_token_github_refuses_fails_the_run_and_keeps_the_checkpoint(stack, fake_github, hook):
    stack.session().client("secretsmanager").put_secret_value(
        SecretId="bridge/github-token", SecretString="wrong"
    )
    summary = load_function("delivery_recovery").lambda_handler({}, Context())
    assert summary["ok"] is False
    (hook_report,) = summary["hooks"]
    assert "401" in hook_report["error"]
    assert "wrong" not in str(summary)
    assert hook_report["checkpoint_advanced"] is False


def test_the_function_counts_what_it_recovered_and_whether_the_run_failed(stack, fake_github, hook, capsys):
    import os

    from kantata_bridge.observability import metrics

    fake_github.delivery_faults.script(["drop", "drop"])
    for n in range(2):
        fake_github.send_event(hook.hook_id, "issues", github_issue_payload(300 + n))
    metrics.clear_metrics()
    saved = os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)  # the local stack turns metrics off
    try:
        capsys.readouterr()
        load_function("delivery_recovery").lambda_handler({}, Context())
        first = emitted_metrics(capsys.readouterr().out)
        stack.session().client("secretsmanager").put_secret_value(
            SecretId="bridge/github-token", SecretString="revoked"
        )
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()
        load_function("delivery_recovery").lambda_handler({}, Context())
        second = emitted_metrics(capsys.readouterr().out)
    finally:
        if saved is not None:
            os.environ["POWERTOOLS_METRICS_DISABLED"] = saved
    assert (first["DeliveriesRecovered"], first["RecoveryRunFailed"]) == (2, 0)
    assert (second["DeliveriesRecovered"], second["RecoveryRunFailed"]) == (0, 1)
