"""Jira reconciliation's pure parts (JQL, the synthetic delivery, settings) and the Jira client against the fake
Jira over HTTP."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from kantata_bridge.mapping.config import parse_config
from kantata_bridge.reconcile.jira import (
    BASE_FIELDS,
    ReconcileSettings,
    ReconcileSettingsError,
    build_jql,
    delivery_id_for,
    jira_projects,
    synthesize,
    window_minutes,
)
from kantata_bridge.reconcile.jira_api import JiraApiError, JiraClient, retry_policy
from kantata_bridge.trackers.jira_events import parse_jira_event
from kantata_bridge.worker.processor import parse_delivery

T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)


def test_projects_are_the_jira_routes_projects_once_each():
    config = parse_config(
        json.dumps(
            {
                "version": 1,
                "routes": [
                    {"tracker": "jira", "project": "PROJ", "components": ["Checkout"], "workspace_id": "1"},
                    {"tracker": "jira", "project": "PROJ", "workspace_id": "2"},
                    {"tracker": "jira", "project": "OPS", "workspace_id": "3"},
                    {"tracker": "github", "repository": "acme/webapp", "workspace_id": "4"},
                ],
            }
        )
    )
    assert jira_projects(config) == ["OPS", "PROJ"]


@pytest.mark.parametrize(
    ("projects", "minutes", "jql"),
    [
        (["PROJ"], 75, 'project in ("PROJ") AND updated >= "-75m" ORDER BY updated ASC'),
        (["A", "B"], 0, 'project in ("A", "B") AND updated >= "-1m" ORDER BY updated ASC'),
        (['X"Y'], 5, 'project in ("X\\"Y") AND updated >= "-5m" ORDER BY updated ASC'),
    ],
)
def test_build_jql(projects, minutes, jql):
    assert build_jql(projects, minutes) == jql


def test_build_jql_refuses_no_project():
    with pytest.raises(ValueError, match="no project"):
        build_jql([], 5)


@pytest.mark.parametrize(
    ("start", "minutes"),
    [(T0 - dt.timedelta(minutes=15), 16), (T0 - dt.timedelta(minutes=15, seconds=1), 17), (T0, 2)],
)
def test_window_minutes_rounds_up_and_adds_one(start, minutes):
    assert window_minutes(start, T0) == minutes


def searched_issue(**fields):
    base = {
        "summary": "Checkout fails",
        "status": {"name": "Done", "statusCategory": {"key": "done"}},
        "project": {"key": "PROJ"},
        "labels": ["client-a"],
        "components": [{"name": "Checkout"}],
        "priority": {"name": "High"},
        "duedate": "2026-12-01",
        "updated": "2026-11-22T11:00:00.123+0100",
        "customfield_10021": [{"value": "Impediment"}],
    }
    base.update(fields)
    return {
        "id": "10012",
        "key": "PROJ-12",
        "self": "https://acme.atlassian.net/rest/api/3/issue/10012",
        "fields": base,
    }


def test_a_searched_issue_becomes_a_reconciled_delivery_the_worker_parses_like_the_webhook():
    synthetic = synthesize(searched_issue(), "2026-11-22T12:00:00.000Z")
    envelope = synthetic.envelope
    assert (envelope.tracker, envelope.event_type, envelope.origin) == (
        "jira",
        "jira:issue_updated",
        "reconciled",
    )
    assert envelope.delivery_id == "reconcile:PROJ-12:2026-11-22T10:00:00.123Z"
    assert envelope.dedupe_key == "jira:-:reconcile:PROJ-12:2026-11-22T10:00:00.123Z"
    assert synthetic.object_key == "jira:issue:PROJ-12"
    # The worker reads it as it reads a webhook: same version, status, labels, flag and link
    event = parse_delivery(envelope)
    assert event.version == dt.datetime(2026, 11, 22, 10, 0, 0, 123000, tzinfo=dt.UTC)
    assert (event.status_name, event.status_category, event.flagged) == ("Done", "done", True)
    assert (event.labels, event.components, event.priority) == (("client-a",), ("Checkout",), "High")
    assert event.link == "https://acme.atlassian.net/browse/PROJ-12"
    body = json.loads(envelope.body)
    assert body["timestamp"] == int(event.version.timestamp() * 1000)
    # And it survives the queue
    from kantata_bridge.envelope import DeliveryEnvelope

    assert DeliveryEnvelope.from_message(envelope.to_message()) == envelope


def test_the_same_change_gets_the_same_delivery_id_whatever_the_offset_jira_writes():
    a = synthesize(searched_issue(updated="2026-11-22T11:00:00.123+0100"), "t")
    b = synthesize(searched_issue(updated="2026-11-22T10:00:00.123+0000"), "t")
    assert a.envelope.delivery_id == b.envelope.delivery_id == delivery_id_for("PROJ-12", a.version)


@pytest.mark.parametrize(
    ("issue", "message"),
    [
        ({**searched_issue(), "self": None}, "issue.self"),
        (searched_issue(status=None), "issue.fields.status"),
        (searched_issue(updated="not a time"), "issue.fields.updated"),
        ({**searched_issue(), "key": ""}, "issue.key"),
    ],
)
def test_an_issue_the_parser_refuses_is_named(issue, message):
    from kantata_bridge.tracker_event import UnmappablePayloadError

    with pytest.raises(UnmappablePayloadError, match=message):
        synthesize(issue, "t")


def test_the_requested_fields_cover_what_the_parser_reads():
    # Given an issue holding only the requested fields
    issue = searched_issue()
    issue["fields"] = {k: v for k, v in issue["fields"].items() if k in BASE_FIELDS}
    # Then the worker's parser gets everything but the flag (added by its per-site field id)
    event = parse_jira_event(synthesize(issue, "t").envelope.body or b"")
    assert event.title == "Checkout fails"
    assert event.due_date == dt.date(2026, 12, 1)


GOOD_ENV = {
    "STATE_TABLE": "state",
    "QUEUE_URL": "https://sqs/queue",
    "JIRA_BASE_URL": "https://acme.atlassian.net/",
    "JIRA_CREDENTIALS_SECRET_NAME": "stack/jira",
    "ROUTING_CONFIG_PARAMETER": "/kb/routing",
}


def test_settings_from_env_with_defaults():
    s = ReconcileSettings.from_env(GOOD_ENV)
    assert s.base_url == "https://acme.atlassian.net"
    assert s.checkpoint_name == "jira:acme.atlassian.net"
    assert (s.overlap, s.settle) == (dt.timedelta(minutes=15), dt.timedelta(minutes=2))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"STATE_TABLE": ""}, "STATE_TABLE"),
        ({"QUEUE_URL": ""}, "QUEUE_URL"),
        ({"JIRA_BASE_URL": ""}, "JIRA_BASE_URL"),
        ({"JIRA_BASE_URL": "acme.atlassian.net"}, "JIRA_BASE_URL"),
        ({"JIRA_CREDENTIALS_SECRET_NAME": ""}, "JIRA_CREDENTIALS_SECRET_NAME"),
        ({"ROUTING_CONFIG_PARAMETER": ""}, "ROUTING_CONFIG"),
        ({"JIRA_RECONCILE_OVERLAP_MINUTES": "x"}, "JIRA_RECONCILE_OVERLAP_MINUTES"),
        ({"JIRA_RECONCILE_OVERLAP_MINUTES": "2"}, "larger than JIRA_RECONCILE_SETTLE_MINUTES"),
    ],
)
def test_settings_name_the_variable_that_is_wrong(change, named):
    with pytest.raises(ReconcileSettingsError, match=named):
        ReconcileSettings.from_env({**GOOD_ENV, **change})


# ---------------------------------------------------------------------- the client over HTTP


def client_for(fake_jira, **kw) -> JiraClient:
    kw.setdefault("retry", retry_policy(backoff_factor=0))
    return JiraClient(fake_jira.url, fake_jira.email, fake_jira.api_token, **kw)


def test_search_follows_next_page_tokens_and_asks_for_the_fields(fake_jira):
    for n in range(1, 6):
        fake_jira.create_issue(f"PROJ-{n}", f"Issue {n}", send_webhook=False)
    fake_jira.create_issue("OTHER-1", "Elsewhere", send_webhook=False)
    pages = list(client_for(fake_jira).search(build_jql(["PROJ"], 60), ["summary", "updated"], page_size=2))
    assert [[i["key"] for i in p] for p in pages] == [["PROJ-1", "PROJ-2"], ["PROJ-3", "PROJ-4"], ["PROJ-5"]]
    assert set(pages[0][0]["fields"]) == {"summary", "updated"}
    bodies = [r.body for r in fake_jira.requests]
    assert "nextPageToken" not in bodies[0]
    assert all(b["nextPageToken"] for b in bodies[1:])


def test_search_repeats_a_503_and_a_429(fake_jira):
    fake_jira.create_issue("PROJ-1", "x", send_webhook=False)
    fake_jira.faults.set_retry_after(0)
    fake_jira.faults.script([503, 429])
    pages = list(client_for(fake_jira).search(build_jql(["PROJ"], 60), ["summary"]))
    assert [[i["key"] for i in p] for p in pages] == [["PROJ-1"]]
    assert [r.status for r in fake_jira.requests] == [503, 429, 200]


def test_credentials_jira_refuses_are_an_error_that_does_not_name_them(fake_jira):
    client = JiraClient(fake_jira.url, fake_jira.email, "wrong-token", retry=retry_policy(backoff_factor=0))
    with pytest.raises(JiraApiError) as caught:
        list(client.search(build_jql(["PROJ"], 5), ["summary"]))
    assert caught.value.status == 401
    assert "wrong-token" not in str(caught.value) + repr(client)


def test_jql_jira_refuses_is_an_error_with_its_messages(fake_jira):
    with pytest.raises(JiraApiError, match="400") as caught:
        list(client_for(fake_jira).search("assignee = currentUser()", ["summary"]))
    assert "does not understand" in str(caught.value)


def test_field_ids_finds_the_flagged_field(fake_jira):
    assert client_for(fake_jira).field_ids("flagged") == ["customfield_10021"]
