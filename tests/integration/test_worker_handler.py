"""The real sync worker handler in-process: moto for DynamoDB/S3/Secrets Manager/SSM, the Kantata sandbox over
HTTP. Idempotency, ordering and outcomes are exercised for real."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time

import boto3
import pytest
from kantata_bridge.envelope import BodyPointer
from kantata_bridge.kantata.client import KantataClient
from moto import mock_aws

from tests.support.logs import bridge_log_lines
from tests.support.worker_env import (
    PAYLOAD_BUCKET,
    FakeLambdaContext,
    SqsSimulator,
    WorkerHarness,
    deliver_concurrently,
    envelope_for,
    fake_aws_env,
    load_handler,
    sqs_event,
)

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def aws(monkeypatch):
    fake_aws_env(monkeypatch.setenv)
    with mock_aws():
        yield


def make_harness(sandbox, tmp_path, **kw):
    harness = WorkerHarness(sandbox, tmp_path, **kw)
    harness.runtime.default_worker().clock = lambda: NOW
    return harness


@pytest.fixture
def harness(aws, kantata_sandbox, tmp_path):
    h = make_harness(kantata_sandbox, tmp_path)
    yield h
    h.close()


@pytest.fixture
def handler(harness):
    return load_handler()


def invoke(handler, envelopes, **kw):
    return handler.lambda_handler(sqs_event(envelopes, **kw), FakeLambdaContext())


def stored_reports(harness):
    client = KantataClient(harness.sandbox.token, harness.sandbox.base_url)
    return sorted(client.list_status_reports(workspace_id=harness.workspace_id), key=lambda r: int(r.id or 0))


MARKER = "kantata-bridge delivery: "
EXPECTED = {
    "github_issues_opened": (
        "green",
        "Issue acme/webapp#42 created: Checkout fails on Safari\n"
        "Status: open · Priority: — · Due: —\n"
        "By bob-qa · https://github.com/acme/webapp/issues/42",
        [
            ("Scope", "green", "open: Checkout fails on Safari"),
            ("Schedule", "green", "No due date"),
            ("Client", "green", "Labels: bug"),
        ],
        ("github", "issue", "acme/webapp#42", "https://github.com/acme/webapp/issues/42", "open"),
    ),
    "github_issues_closed": (
        "green",
        "Issue acme/webapp#42 closed: Checkout fails on Safari\n"
        "Status: closed · Priority: — · Due: —\n"
        "By alice-dev · https://github.com/acme/webapp/issues/42",
        [
            ("Scope", "green", "closed: Checkout fails on Safari"),
            ("Schedule", "green", "Completed"),
            ("Client", "green", "Labels: bug"),
        ],
        ("github", "issue", "acme/webapp#42", "https://github.com/acme/webapp/issues/42", "closed"),
    ),
    "github_issues_labeled_blocked": (
        "red",
        "Issue acme/webapp#42 updated: Checkout fails on Safari\n"
        "Status: open · Priority: — · Due: —\n"
        "By alice-dev · https://github.com/acme/webapp/issues/42",
        [
            ("Scope", "red", "open: Checkout fails on Safari"),
            ("Schedule", "green", "No due date"),
            ("Client", "green", "Labels: bug, blocked"),
        ],
        ("github", "issue", "acme/webapp#42", "https://github.com/acme/webapp/issues/42", "open"),
    ),
    "github_pull_request_closed_merged": (
        "green",
        "Pull request acme/webapp#43 merged: Fix Safari checkout: polyfill structuredClone\n"
        "Status: merged · Priority: — · Due: —\n"
        "By alice-dev · https://github.com/acme/webapp/pull/43",
        [
            ("Scope", "green", "merged: Fix Safari checkout: polyfill structuredClone"),
            ("Schedule", "green", "Completed"),
            ("Client", "green", "Labels: bug"),
        ],
        ("github", "pull_request", "acme/webapp#43", "https://github.com/acme/webapp/pull/43", "merged"),
    ),
    "jira_issue_created": (
        "green",
        "Issue PROJ-12 created: Checkout fails on Safari\n"
        "Status: To Do · Priority: High · Due: 2026-11-28\n"
        "By Jane Planner · https://acme.atlassian.net/browse/PROJ-12",
        [
            ("Scope", "green", "To Do: Checkout fails on Safari"),
            ("Schedule", "green", "Due 2026-11-28"),
            ("Client", "green", "Labels: checkout, safari"),
        ],
        ("jira", "issue", "PROJ-12", "https://acme.atlassian.net/browse/PROJ-12", "To Do"),
    ),
    "jira_issue_updated_in_progress": (
        "green",
        "Issue PROJ-12 moved from To Do to In Progress: Checkout fails on Safari\n"
        "Status: In Progress · Priority: High · Due: 2026-11-28\n"
        "By Raj Developer · https://acme.atlassian.net/browse/PROJ-12",
        [
            ("Scope", "green", "In Progress: Checkout fails on Safari"),
            ("Schedule", "green", "Due 2026-11-28"),
            ("Client", "green", "Labels: checkout, safari"),
        ],
        ("jira", "issue", "PROJ-12", "https://acme.atlassian.net/browse/PROJ-12", "In Progress"),
    ),
    "jira_issue_updated_done": (
        "green",
        "Issue PROJ-12 moved to Done: Checkout fails on Safari\n"
        "Status: Done · Priority: High · Due: 2026-11-28\n"
        "By Raj Developer · https://acme.atlassian.net/browse/PROJ-12",
        [
            ("Scope", "green", "Done: Checkout fails on Safari"),
            ("Schedule", "green", "Completed"),
            ("Client", "green", "Labels: checkout, safari"),
        ],
        ("jira", "issue", "PROJ-12", "https://acme.atlassian.net/browse/PROJ-12", "Done"),
    ),
    "gitlab_issue_opened": (
        "green",
        "Issue acme/platform/checkout#12 created: Payment form rejects valid Maestro cards\n"
        "Status: opened · Priority: — · Due: 2026-11-28\n"
        "By Priya Natarajan · https://gitlab.com/acme/platform/checkout/-/issues/12",
        [
            ("Scope", "green", "opened: Payment form rejects valid Maestro cards"),
            ("Schedule", "green", "Due 2026-11-28"),
            ("Client", "green", "Labels: bug, payments"),
        ],
        (
            "gitlab",
            "issue",
            "acme/platform/checkout#12",
            "https://gitlab.com/acme/platform/checkout/-/issues/12",
            "opened",
        ),
    ),
    "gitlab_issue_labeled_in_review": (
        "green",
        "Issue acme/platform/checkout#12 moved from in progress to in review: Payment form rejects valid Maestro cards\n"
        "Status: in review · Priority: — · Due: 2026-11-28\n"
        "By Marco Rossi · https://gitlab.com/acme/platform/checkout/-/issues/12",
        [
            ("Scope", "green", "in review: Payment form rejects valid Maestro cards"),
            ("Schedule", "green", "Due 2026-11-28"),
            ("Client", "green", "Labels: bug, payments, workflow::in review"),
        ],
        (
            "gitlab",
            "issue",
            "acme/platform/checkout#12",
            "https://gitlab.com/acme/platform/checkout/-/issues/12",
            "in review",
        ),
    ),
    "gitlab_issue_closed": (
        "green",
        "Issue acme/platform/checkout#12 closed: Payment form rejects valid Maestro cards\n"
        "Status: closed · Priority: — · Due: 2026-11-28\n"
        "By Marco Rossi · https://gitlab.com/acme/platform/checkout/-/issues/12",
        [
            ("Scope", "green", "closed: Payment form rejects valid Maestro cards"),
            ("Schedule", "green", "Completed"),
            ("Client", "green", "Labels: bug, payments, workflow::in review"),
        ],
        (
            "gitlab",
            "issue",
            "acme/platform/checkout#12",
            "https://gitlab.com/acme/platform/checkout/-/issues/12",
            "closed",
        ),
    ),
    "gitlab_work_item_task_in_progress": (
        "green",
        "Issue acme/platform/checkout#13 updated: Add Maestro BIN ranges to the card validator\n"
        "Status: In progress · Priority: — · Due: —\n"
        "By Marco Rossi · https://gitlab.com/acme/platform/checkout/-/work_items/13",
        [
            ("Scope", "green", "In progress: Add Maestro BIN ranges to the card validator"),
            ("Schedule", "green", "No due date"),
            ("Client", "green", "Labels: payments"),
        ],
        (
            "gitlab",
            "issue",
            "acme/platform/checkout#13",
            "https://gitlab.com/acme/platform/checkout/-/work_items/13",
            "In progress",
        ),
    ),
    "gitlab_merge_request_merged": (
        "green",
        "Merge request acme/platform/checkout!34 merged: Accept Maestro card numbers of 12 to 19 digits\n"
        "Status: merged · Priority: — · Due: —\n"
        "By Priya Natarajan · https://gitlab.com/acme/platform/checkout/-/merge_requests/34",
        [
            ("Scope", "green", "merged: Accept Maestro card numbers of 12 to 19 digits"),
            ("Schedule", "green", "Completed"),
            ("Client", "green", "Labels: bug, payments"),
        ],
        (
            "gitlab",
            "merge_request",
            "acme/platform/checkout!34",
            "https://gitlab.com/acme/platform/checkout/-/merge_requests/34",
            "merged",
        ),
    ),
    "linear_issue_created": (
        "green",
        "Issue ENG-123 created: Export invoices as CSV\n"
        "Status: Todo · Priority: High · Due: 2026-11-28\n"
        "By Jane Planner · https://linear.app/acme/issue/ENG-123/export-invoices-as-csv",
        [
            ("Scope", "green", "Todo: Export invoices as CSV"),
            ("Schedule", "green", "Due 2026-11-28"),
            ("Client", "green", "Labels: Bug, billing"),
        ],
        (
            "linear",
            "issue",
            "ENG-123",
            "https://linear.app/acme/issue/ENG-123/export-invoices-as-csv",
            "Todo",
        ),
    ),
    "linear_issue_in_progress": (
        "green",
        "Issue ENG-123 moved to In Progress: Export invoices as CSV\n"
        "Status: In Progress · Priority: High · Due: 2026-11-28\n"
        "By Raj Developer · https://linear.app/acme/issue/ENG-123/export-invoices-as-csv",
        [
            ("Scope", "green", "In Progress: Export invoices as CSV"),
            ("Schedule", "green", "Due 2026-11-28"),
            ("Client", "green", "Labels: Bug, billing"),
        ],
        (
            "linear",
            "issue",
            "ENG-123",
            "https://linear.app/acme/issue/ENG-123/export-invoices-as-csv",
            "In Progress",
        ),
    ),
    "linear_issue_completed": (
        "green",
        "Issue ENG-123 moved to Done: Export invoices as CSV\n"
        "Status: Done · Priority: High · Due: 2026-11-28\n"
        "By Raj Developer · https://linear.app/acme/issue/ENG-123/export-invoices-as-csv",
        [
            ("Scope", "green", "Done: Export invoices as CSV"),
            ("Schedule", "green", "Completed"),
            ("Client", "green", "Labels: Bug, billing"),
        ],
        (
            "linear",
            "issue",
            "ENG-123",
            "https://linear.app/acme/issue/ENG-123/export-invoices-as-csv",
            "Done",
        ),
    ),
    "linear_issue_removed": (
        "yellow",
        "Issue ENG-123 deleted: Export invoices as CSV\n"
        "Status: Done · Priority: High · Due: 2026-11-28\n"
        "By Jane Planner · https://linear.app/acme/issue/ENG-123/export-invoices-as-csv",
        [
            ("Scope", "yellow", "Done: Export invoices as CSV"),
            ("Schedule", "green", "Completed"),
            ("Client", "green", "Labels: Bug, billing"),
        ],
        (
            "linear",
            "issue",
            "ENG-123",
            "https://linear.app/acme/issue/ENG-123/export-invoices-as-csv",
            "Done",
        ),
    ),
    "jira_issue_deleted": (
        "yellow",
        "Issue PROJ-12 deleted: Checkout fails on Safari\n"
        "Status: Done · Priority: High · Due: 2026-11-28\n"
        "By Jane Planner · https://acme.atlassian.net/browse/PROJ-12",
        [
            ("Scope", "yellow", "Done: Checkout fails on Safari"),
            ("Schedule", "green", "Completed"),
            ("Client", "green", "Labels: checkout, safari"),
        ],
        ("jira", "issue", "PROJ-12", "https://acme.atlassian.net/browse/PROJ-12", "Done"),
    ),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_sample_delivery_produces_exactly_the_expected_report(harness, handler, name):
    color, description, details, ref = EXPECTED[name]
    env = envelope_for(name)
    # When the worker handles the delivery
    response = invoke(handler, [env])
    # Then one report exists with the expected colour, description, details and external reference
    assert response == {"batchItemFailures": []}
    [report] = stored_reports(harness)
    assert report.color == color
    assert report.description == f"{description}\n\n{MARKER}{env.dedupe_key}"
    assert [(d.category, d.color, d.description) for d in report.details] == details
    [xref] = report.external_references
    assert (
        xref.service_name,
        xref.service_model,
        xref.service_model_ref,
        xref.external_link,
        xref.external_status,
    ) == ref
    # external_message is the tracker object's title (the text after "<ref> <action>: " in the description)
    assert xref.external_message == description.splitlines()[0].split(": ", 1)[1]
    # And the outcome is recorded against the delivery and the object
    outcome = harness.outcomes().get(env.dedupe_key)
    assert (outcome.kind.value, outcome.report_id, outcome.workspace_id) == (
        "posted",
        report.id,
        harness.workspace_id,
    )
    assert [o.dedupe_key for o in harness.outcomes().for_object(outcome.object_key)] == [env.dedupe_key]


def test_issue_lifecycle_in_order_makes_one_report_per_change(harness, handler):
    for name in ("github_issues_opened", "github_issues_labeled_blocked", "github_issues_closed"):
        invoke(handler, [envelope_for(name)])
    assert [r.color for r in stored_reports(harness)] == ["green", "red", "green"]


def test_form_encoded_delivery_is_posted(harness, handler):
    env = envelope_for("github_issues_opened_form")
    assert env.content_type == "application/x-www-form-urlencoded"
    invoke(handler, [env])
    [report] = stored_reports(harness)
    assert report.description.startswith("Issue acme/webapp#42 created")


def test_ping_is_skipped_and_recorded(harness, handler):
    env = envelope_for("github_ping")
    assert invoke(handler, [env]) == {"batchItemFailures": []}
    assert stored_reports(harness) == []
    outcome = harness.outcomes().get(env.dedupe_key)
    assert (outcome.kind.value, outcome.reason) == ("skipped", "ignored: github event 'ping' is not reported")


def test_same_delivery_five_times_makes_one_report(harness, handler):
    env = envelope_for("jira_issue_created")
    for _ in range(5):
        assert invoke(handler, [env]) == {"batchItemFailures": []}
    assert len(stored_reports(harness)) == 1
    assert len(harness.posts()) == 1


def test_same_delivery_five_times_in_one_batch_makes_one_report(harness, handler):
    env = envelope_for("jira_issue_created")
    sim = SqsSimulator(handler.lambda_handler, max_receive_count=10)
    sim.send([env] * 5)
    sim.drain()
    assert len(stored_reports(harness)) == 1
    assert sim.dlq == []


def test_same_delivery_concurrently_from_threads_makes_one_report(harness):
    # Given five "execution environments" (each its own copy of the app module) and one delivery
    env = envelope_for("jira_issue_created")
    errors = deliver_concurrently(env, copies=5)
    # Then exactly one report was posted
    assert errors == []
    assert len(stored_reports(harness)) == 1
    assert len(harness.posts()) == 1


def test_older_update_after_newer_one_makes_no_report(harness, handler):
    invoke(handler, [envelope_for("jira_issue_updated_done")])
    stale = envelope_for("jira_issue_updated_in_progress")
    assert invoke(handler, [stale]) == {"batchItemFailures": []}
    assert [r.description.splitlines()[0] for r in stored_reports(harness)] == [
        "Issue PROJ-12 moved to Done: Checkout fails on Safari"
    ]
    outcome = harness.outcomes().get(stale.dedupe_key)
    assert outcome.kind.value == "skipped"
    assert outcome.reason.startswith("stale:")


def test_ten_edits_of_one_issue_in_one_batch_make_one_report(harness, handler):
    def edit(i):
        def change(doc):
            doc["issue"]["updated_at"] = f"2026-11-20T10:05:{i:02d}Z"
            doc["issue"]["title"] = f"Checkout fails on Safari (edit {i})"

        return change

    envs = [
        envelope_for("github_issues_opened", delivery_id=f"edit-{i}", edit=edit(i))
        for i in (4, 9, 0, 3, 7, 1, 8, 2, 6, 5)
    ]
    assert invoke(handler, envs) == {"batchItemFailures": []}
    [report] = stored_reports(harness)
    assert "(edit 9)" in report.description
    kinds = [harness.outcomes().get(e.dedupe_key).kind.value for e in envs]
    assert sorted(kinds) == ["posted"] + ["skipped"] * 9


def test_kantata_503_for_a_while_is_retried_and_posted_once(harness, handler):
    harness.sandbox.faults.script([503, 503, 503], method="POST", path_prefix="/status_reports")
    env = envelope_for("jira_issue_created")
    sim = SqsSimulator(handler.lambda_handler, max_receive_count=5)
    sim.send([env])
    sim.drain()
    assert sim.invocations == 4
    assert sim.dlq == []
    assert len(stored_reports(harness)) == 1
    assert harness.outcomes().get(env.dedupe_key).kind.value == "posted"


def test_failed_attempt_leaves_no_idempotency_record_blocking_the_redelivery(harness, handler):
    harness.sandbox.faults.script([503], method="POST", path_prefix="/status_reports")
    env = envelope_for("jira_issue_created")
    response = invoke(handler, [env])
    assert len(response["batchItemFailures"]) == 1
    # The delivery's record holds the failed outcome, and no idempotency state that would block a retry
    item = delivery_item(env.dedupe_key)
    assert "idem_status" not in item
    assert harness.outcomes().get(env.dedupe_key).kind.value == "failed"
    assert invoke(handler, [env], receive_count=2) == {"batchItemFailures": []}
    assert len(stored_reports(harness)) == 1


def test_every_record_failing_returns_all_failures_instead_of_raising(harness, handler):
    harness.sandbox.faults.set_rate(1.0, statuses=(503,))
    envs = [envelope_for("jira_issue_created"), envelope_for("github_issues_opened")]
    event = sqs_event(envs)
    response = handler.lambda_handler(event, FakeLambdaContext())
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == sorted(
        r["messageId"] for r in event["Records"]
    )


def test_422_parks_the_delivery_with_its_reason_while_the_rest_of_the_batch_succeeds(
    aws, kantata_sandbox, tmp_path
):
    routes = [
        {"tracker": "github", "repository": "acme/webapp", "workspace_id": "{workspace}"},
        {
            "tracker": "jira",
            "project": "PROJ",
            "workspace_id": "99999999",
        },  # no such workspace: Kantata says 422
    ]
    harness = make_harness(kantata_sandbox, tmp_path, routes=routes)
    try:
        handler = load_handler()
        good, bad = envelope_for("github_issues_opened"), envelope_for("jira_issue_created")
        assert invoke(handler, [good, bad]) == {"batchItemFailures": []}
        assert len(stored_reports(harness)) == 1
        parked = list(harness.outcomes().parked())
        assert [p.dedupe_key for p in parked] == [bad.dedupe_key]
        assert "422" in parked[0].reason
        assert "workspace_id" in parked[0].reason
        assert parked[0].envelope == bad.to_message()
        # A parked delivery is never retried in a loop: redelivering it parks it again without a loop,
        # and it is still listed once for redrive.
        assert invoke(handler, [bad]) == {"batchItemFailures": []}
        assert [p.dedupe_key for p in harness.outcomes().parked()] == [bad.dedupe_key]
    finally:
        harness.close()


def test_post_whose_answer_was_lost_is_not_posted_twice(harness, handler):
    # Given Kantata creates the report but the connection drops before the answer arrives
    harness.sandbox.faults.script(["drop_after"], method="POST", path_prefix="/status_reports")
    env = envelope_for("jira_issue_created")
    sim = SqsSimulator(handler.lambda_handler, max_receive_count=5)
    sim.send([env])
    # When SQS redelivers the failed record
    sim.drain()
    # Then the worker finds the report it made and does not post again
    [report] = stored_reports(harness)
    outcome = harness.outcomes().get(env.dedupe_key)
    assert (outcome.kind.value, outcome.report_id) == ("posted", report.id)
    assert outcome.reason.startswith("posted by an earlier attempt")
    assert len(harness.posts()) == 1


def test_claim_checked_body_is_fetched_from_s3(harness, handler):
    env = envelope_for("jira_issue_created")
    body = env.body
    s3 = boto3.client("s3")
    s3.put_object(Bucket=PAYLOAD_BUCKET, Key="deliveries/x.json", Body=body)
    pointer = BodyPointer(PAYLOAD_BUCKET, "deliveries/x.json", len(body), hashlib.sha256(body).hexdigest())
    claim_checked = type(env)(
        **{**{f: getattr(env, f) for f in env.__dataclass_fields__}, "body": None, "body_pointer": pointer}
    )
    assert invoke(handler, [claim_checked]) == {"batchItemFailures": []}
    assert len(stored_reports(harness)) == 1


def test_claim_checked_body_that_is_gone_is_parked(harness, handler):
    env = envelope_for("jira_issue_created")
    pointer = BodyPointer(PAYLOAD_BUCKET, "deliveries/missing.json", 10, "0" * 64)
    gone = type(env)(
        **{**{f: getattr(env, f) for f in env.__dataclass_fields__}, "body": None, "body_pointer": pointer}
    )
    assert invoke(handler, [gone]) == {"batchItemFailures": []}
    assert harness.outcomes().get(env.dedupe_key).kind.value == "parked"


def test_routing_config_from_ssm_parameter(aws, kantata_sandbox, tmp_path, monkeypatch):
    harness = make_harness(kantata_sandbox, tmp_path)
    try:
        config = {"routes": [{"tracker": "jira", "project": "PROJ", "workspace_id": harness.workspace_id}]}
        boto3.client("ssm").put_parameter(Name="/bridge/routing", Value=json.dumps(config), Type="String")
        monkeypatch.delenv("ROUTING_CONFIG_FILE")
        monkeypatch.setenv("ROUTING_CONFIG_PARAMETER", "/bridge/routing")
        harness.runtime.reset()
        harness.runtime.default_worker().clock = lambda: NOW
        handler = load_handler()
        invoke(handler, [envelope_for("jira_issue_created"), envelope_for("github_issues_opened")])
        [report] = stored_reports(harness)
        assert report.description.startswith("Issue PROJ-12 created")
    finally:
        harness.close()


def delivery_item(dedupe_key):
    return boto3.client("dynamodb").get_item(
        TableName=harness_state_table(), Key={"pk": {"S": "DELIVERY#" + dedupe_key}, "sk": {"S": "OUTCOME"}}
    )["Item"]


def harness_state_table():
    from tests.support.worker_env import STATE_TABLE

    return STATE_TABLE


def test_idempotency_record_is_keyed_on_the_delivery_and_lives_for_the_configured_lifetime(
    aws, kantata_sandbox, tmp_path, monkeypatch
):
    # Given a worker whose idempotency lifetime is set to 9 days
    monkeypatch.setenv("IDEMPOTENCY_TTL_SECONDS", str(9 * 86400))
    harness = make_harness(kantata_sandbox, tmp_path)
    try:
        env = envelope_for("jira_issue_created")
        context = FakeLambdaContext(remaining_ms=120_000)
        started = []
        ddb = harness.runtime.dynamodb_client()
        ddb.meta.events.register(
            "provide-client-params.dynamodb.TransactWriteItems", lambda params, **_: started.append(params)
        )
        # When one delivery is handled
        before = time.time()
        assert load_handler().lambda_handler(sqs_event([env]), context) == {"batchItemFailures": []}
        # Then its record is keyed on the delivery's dedupe key (not the SQS message id), is completed ...
        item = delivery_item(env.dedupe_key)
        assert item["idem_status"] == {"S": "COMPLETED"}
        assert item["kind"] == {"S": "posted"}
        # ... is remembered for the configured lifetime ...
        assert before + 9 * 86400 - 5 <= int(item["idem_expiry"]["N"]) <= time.time() + 9 * 86400 + 5
        # ... and its in-progress lock ended with the invocation's remaining time (Lambda context registered)
        (put,) = [i["Put"]["Item"] for p in started for i in p["TransactItems"] if "Put" in i]
        lock_ms = int(put["idem_in_progress_expiry"]["N"])
        assert before * 1000 + 110_000 <= lock_ms <= time.time() * 1000 + 120_000
    finally:
        harness.close()


@pytest.fixture
def log_lines():
    with bridge_log_lines() as lines:
        yield lines


def test_the_kantata_token_and_stack_traces_reach_no_log_line_outcome_or_response(
    harness, handler, log_lines
):
    # Given deliveries that are posted, fail with 503, are parked after a 401, and fail to fetch the token
    token = harness.sandbox.token
    posted, failed, parked, no_token = (
        envelope_for("github_issues_opened"),
        envelope_for("jira_issue_created"),
        envelope_for("jira_issue_updated_in_progress", delivery_id="d-401"),
        envelope_for("jira_issue_updated_done", delivery_id="d-no-token"),
    )
    responses = [invoke(handler, [posted])]
    harness.sandbox.faults.script([503], method="POST", path_prefix="/status_reports")
    responses.append(invoke(handler, [failed]))
    harness.sandbox.faults.script([401], method="POST", path_prefix="/status_reports")
    responses.append(invoke(handler, [parked]))
    boto3.client("secretsmanager").delete_secret(
        SecretId=harness.runtime.default_worker().kantata.settings.kantata_token_secret_name,
        ForceDeleteWithoutRecovery=True,
    )
    harness.runtime.default_worker().kantata.invalidate()
    responses.append(invoke(handler, [no_token]))
    # Then each path ended as expected ...
    kinds = [harness.outcomes().get(e.dedupe_key).kind.value for e in (posted, failed, parked, no_token)]
    assert kinds == ["posted", "failed", "parked", "failed"]
    assert harness.outcomes().get(no_token.dedupe_key).reason == "kantata client: GetParameterError"
    # ... and the token is in no log line, stored outcome or handler response, and no stack trace was logged
    logged = log_lines.getvalue()
    assert "delivery outcome" in logged
    stored = boto3.client("dynamodb").scan(TableName=harness.outcomes().table_name)["Items"]
    for text in (logged, json.dumps(stored), json.dumps(responses)):
        assert token not in text
        assert "Traceback" not in text


def test_every_delivery_in_a_mixed_batch_ends_with_one_log_line_one_metric_and_one_record(
    harness, handler, log_lines, capsys
):
    # Given a batch with a new issue (twice: a duplicate copy), a ping, a message that is no envelope,
    # and two Jira edits of one issue (the older one is superseded)
    opened = envelope_for("github_issues_opened")
    ping = envelope_for("github_ping")
    older = envelope_for("jira_issue_updated_in_progress", delivery_id="j-older")
    newer = envelope_for("jira_issue_updated_done", delivery_id="j-newer")
    event = sqs_event([opened, opened, ping, "{not an envelope", older, newer])
    capsys.readouterr()
    # When the worker handles it
    assert handler.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    # Then each record has exactly one "delivery outcome" log line, with the expected outcome
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines() if line.startswith("{")]
    outcomes = [(x["dedupe_key"], x["outcome"]) for x in lines if x.get("message") == "delivery outcome"]
    bad_key = "sqs:" + event["Records"][3]["messageId"]
    assert sorted(outcomes) == sorted(
        [
            (opened.dedupe_key, "posted"),
            (opened.dedupe_key, "skipped"),  # the copy: "duplicate: already processed"
            (ping.dedupe_key, "skipped"),
            (bad_key, "parked"),
            (older.dedupe_key, "skipped"),
            (newer.dedupe_key, "posted"),
        ]
    )
    # ... one metric per record, by kind ...
    [emf] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    counts = {k: sum(v) if isinstance(v, list) else v for k, v in emf.items() if k.startswith("Deliveries")}
    assert counts == {
        "DeliveriesPosted": 2,
        "DeliveriesDuplicate": 1,
        "DeliveriesSkipped": 2,
        "DeliveriesParked": 1,
    }
    # ... and one durable record per delivery
    recorded = {k: harness.outcomes().get(k).kind.value for k, _ in outcomes}
    assert recorded == {
        opened.dedupe_key: "posted",
        ping.dedupe_key: "skipped",
        bad_key: "parked",
        older.dedupe_key: "skipped",
        newer.dedupe_key: "posted",
    }
    assert (
        harness.outcomes()
        .get(older.dedupe_key)
        .reason.startswith(f"superseded by delivery {newer.dedupe_key}")
    )


def test_messages_queued_by_the_previous_version_are_still_processed_after_a_deploy(harness, handler):
    # Given a batch holding a message in the old wire form (v1: the whole envelope base64 in a JSON body,
    # queued before the new receiver was deployed) and one in the new form (the body as is + attributes)
    old = envelope_for("jira_issue_created")
    new = envelope_for("github_issues_opened")
    # When the new worker takes the batch
    assert invoke(handler, [old.to_message(), new]) == {"batchItemFailures": []}
    # Then both are posted, each with its own external reference
    outcomes = {key: harness.outcomes().get(key) for key in (old.dedupe_key, new.dedupe_key)}
    assert {key: o.kind.value for key, o in outcomes.items() if o} == {
        old.dedupe_key: "posted",
        new.dedupe_key: "posted",
    }
    refs = sorted(
        (ref.service_name, ref.service_model_ref)
        for report in stored_reports(harness)
        for ref in report.external_references
    )
    assert refs == [("github", "acme/webapp#42"), ("jira", "PROJ-12")]
