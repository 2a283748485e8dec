"""The tracker fakes behave like the services they stand in for: signed webhooks the bridge's own adapters
accept, GitHub's delivery records and rate-limit headers, Jira's retries and JQL subset, faults, control."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from kantata_bridge.trackers.github import GitHubAdapter
from kantata_bridge.trackers.jira import JiraAdapter
from tracker_fakes.jira import JqlError, parse_jql


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers the statuses it is given (then 202) and keeps each request."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = outer.statuses.pop(0) if outer.statuses else 202
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/x"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


# ---------------------------------------------------------------------- GitHub


def test_github_sends_a_delivery_the_bridges_adapter_verifies(fake_github, receiver):
    hook = fake_github.add_hook("acme/webapp", url=receiver.url, secret="s3cret")
    attempt = fake_github.send_event(hook.hook_id, "issues", {"action": "opened", "issue": {"number": 1}})
    assert attempt.ok
    assert (attempt.status, attempt.status_code) == ("OK", 202)
    ((headers, body),) = receiver.received
    adapter = GitHubAdapter()
    adapter.verify_signature(headers, body, ["other", "s3cret"])
    identity = adapter.identify(headers, body)
    assert (identity.event_type, identity.delivery_id, identity.hook_id) == (
        "issues",
        attempt.guid,
        str(hook.hook_id),
    )


def test_github_records_a_receivers_refusal_and_an_unreachable_receiver(fake_github, receiver):
    receiver.statuses = [503]
    hook = fake_github.add_hook("acme/webapp", url=receiver.url, secret="s")
    refused = fake_github.send_event(hook.hook_id, "issues", {"action": "opened"})
    fake_github.delivery_faults.script(["drop"])
    dropped = fake_github.send_event(hook.hook_id, "issues", {"action": "opened"})
    assert (refused.status, refused.status_code) == ("Invalid HTTP Response: 503", 503)
    assert (dropped.status, dropped.status_code) == ("failed to connect", 0)
    assert len(receiver.received) == 1  # the dropped one never arrived


def test_github_api_answers_carry_rate_limit_headers_and_need_the_token(fake_github):
    hook = fake_github.add_hook(org="acme", url="http://127.0.0.1:9/x", secret="s")
    url = f"{fake_github.url}/orgs/acme/hooks/{hook.hook_id}/deliveries"
    ok = requests.get(url, headers={"Authorization": f"token {fake_github.token}"}, timeout=5)
    assert ok.status_code == 200
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-used"} <= {
        k.lower() for k in ok.headers
    }
    refused = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert (refused.status_code, refused.json()["message"]) == (401, "Bad credentials")
    wrong_org = requests.get(
        url.replace("/acme/", "/other/"), headers={"Authorization": f"token {fake_github.token}"}, timeout=5
    )
    assert wrong_org.status_code == 404
    assert all("authorization" not in r.headers for r in fake_github.requests)


def test_github_delivery_detail_shows_the_request(fake_github):
    hook = fake_github.add_hook("acme/webapp", url="http://127.0.0.1:9/x", secret="s")
    attempt = fake_github.send_event(hook.hook_id, "issues", {"action": "opened"})
    doc = requests.get(
        f"{fake_github.url}/{hook.path}/deliveries/{attempt.id}",
        headers={"Authorization": f"Bearer {fake_github.token}"},
        timeout=5,
    ).json()
    assert doc["guid"] == attempt.guid
    assert doc["request"]["payload"] == {"action": "opened"}


def test_github_control_routes(fake_github):
    health = requests.get(f"{fake_github.url}/_fake/health", timeout=5).json()
    assert health["ok"] is True
    set_faults = requests.post(f"{fake_github.url}/_fake/faults", json={"rate": 0.5}, timeout=5)
    assert set_faults.json()["rate"] == 0.5
    assert requests.post(f"{fake_github.url}/_fake/faults", json={"rate": 2}, timeout=5).status_code == 400
    assert requests.post(f"{fake_github.url}/_fake/reset", timeout=5).json() == {"reset": True}
    assert fake_github.faults.rate == 0


# ---------------------------------------------------------------------- Jira


def test_jira_sends_signed_webhooks_the_bridges_adapter_verifies(fake_jira, receiver):
    fake_jira.set_webhook(receiver.url, "jira-secret")
    fake_jira.create_issue("PROJ-1", "Checkout fails")
    fake_jira.update_issue("PROJ-1", status="Done")
    (created, updated) = receiver.received
    adapter = JiraAdapter()
    for headers, body in (created, updated):
        adapter.verify_signature(headers, body, ["jira-secret"])
    doc = json.loads(updated[1])
    assert doc["webhookEvent"] == "jira:issue_updated"
    assert doc["changelog"]["items"] == [
        {"field": "status", "fieldId": "status", "fromString": "To Do", "toString": "Done"}
    ]
    assert doc["issue"]["fields"]["status"]["statusCategory"]["key"] == "done"
    assert doc["issue"]["fields"]["updated"] > json.loads(created[1])["issue"]["fields"]["updated"]


def test_jira_retries_a_webhook_with_the_same_identifier_and_gives_up_after_its_retries(fake_jira, receiver):
    fake_jira.set_webhook(receiver.url, "s")
    receiver.statuses = [503, 500]
    fake_jira.create_issue("PROJ-1", "x")
    identifiers = {h["x-atlassian-webhook-identifier"] for h, _ in receiver.received}
    assert len(receiver.received) == 3
    assert len(identifiers) == 1
    assert [h.get("x-atlassian-webhook-retry") for h, _ in receiver.received] == [None, "1", "2"]
    fake_jira.webhook_faults.set_drop_rate(1.0)
    fake_jira.update_issue("PROJ-1", summary="y")
    lost = [a for a in fake_jira.webhook_attempts if a.event == "jira:issue_updated"]
    assert [a.status for a in lost] == [0] * (fake_jira.webhook_retries + 1)
    assert len(receiver.received) == 3


def test_jira_does_not_retry_a_4xx(fake_jira, receiver):
    fake_jira.set_webhook(receiver.url, "s")
    receiver.statuses = [401]
    fake_jira.create_issue("PROJ-1", "x")
    assert len(receiver.received) == 1


NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("jql", "matching"),
    [
        ('project in ("PROJ", OPS)', {"PROJ-1", "OPS-1"}),
        ("project = PROJ", {"PROJ-1"}),
        ('project = "proj"', {"PROJ-1"}),
        ("key = OPS-1", {"OPS-1"}),
        ('updated >= "-30m"', {"PROJ-1"}),
        ("updated >= -2h", {"PROJ-1", "OPS-1"}),
        ('updated >= "2026-11-22 11:45"', {"PROJ-1"}),
        ('updated < "2026/11/22 11:45"', {"OPS-1"}),
        ('updated > "2026-11-22"', {"PROJ-1", "OPS-1"}),
        ('project in ("PROJ") AND updated >= "-30m" ORDER BY updated ASC', {"PROJ-1"}),
        ("PROJECT IN (OPS) and UPDATED >= -1d order by key desc", {"OPS-1"}),
    ],
)
def test_jql_subset(jql, matching):
    from tracker_fakes.jira import FakeIssue

    issues = [
        FakeIssue("1", "PROJ-1", "a", "To Do", "new", NOW - dt.timedelta(minutes=10), NOW),
        FakeIssue("2", "OPS-1", "b", "To Do", "new", NOW - dt.timedelta(minutes=90), NOW),
    ]
    query = parse_jql(jql, NOW)
    assert {i.key for i in issues if query.match(i)} == matching


@pytest.mark.parametrize(
    "jql",
    [
        "",
        "assignee = currentUser()",
        'updated >= "tomorrow"',
        "project in ()",
        "project = PROJ ORDER BY summary",
        "project = PROJ OR project = OPS",
    ],
)
def test_jql_outside_the_subset_is_refused(jql):
    with pytest.raises(JqlError):
        parse_jql(jql, NOW)


def test_jira_search_needs_basic_auth_and_a_valid_body(fake_jira):
    url = f"{fake_jira.url}/rest/api/3/search/jql"
    assert requests.post(url, json={"jql": "project = A"}, timeout=5).status_code == 401
    auth = {"Authorization": fake_jira.auth_header}
    assert requests.post(url, json={"fields": []}, headers=auth, timeout=5).status_code == 400
    assert (
        requests.post(
            url, json={"jql": "project = A", "nextPageToken": "!!"}, headers=auth, timeout=5
        ).status_code
        == 400
    )
    empty = requests.post(url, json={"jql": "project = A"}, headers=auth, timeout=5).json()
    assert empty == {"issues": [], "isLast": True}
