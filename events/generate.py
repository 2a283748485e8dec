"""Build the invoke-ready API Gateway (HTTP API, payload 2.0) events in events/apigw/ from events/payloads/.

Each event carries the raw payload as the tracker would send it (compact JSON, or form-encoded for the
``*_form`` variant) and real signature (or secret token) headers computed with the sample secrets documented
in docs/receiver.md, so the events pass the receiver's verification and stay consistent with the payloads.
Linear and signed GitLab (``*_signed``) events carry a signed timestamp from the samples' dates: replayed
today they are refused as ``stale`` unless the tolerance is switched off (``<TRACKER>_SIGNATURE_TOLERANCE_SECONDS=0``).

    python events/generate.py          # rewrite events/apigw/*.json
    python events/generate.py --check  # exit 1 if a committed event differs from what would be generated
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent
PAYLOADS = ROOT / "payloads"
APIGW = ROOT / "apigw"

GITHUB_SECRET = "github-sample-secret"
JIRA_SECRET = "jira-sample-secret"
GITLAB_TOKEN = "gitlab-sample-token"
# A Standard Webhooks signing secret: "whsec_" + base64 of a 32-byte key.
GITLAB_SIGNING_SECRET = "whsec_" + base64.b64encode(b"kantata-bridge gitlab sample key").decode()
LINEAR_SECRET = "linear-sample-secret"
API_HOST = "abc123defg.execute-api.eu-west-1.amazonaws.com"
GITHUB_HOOK_ID = "498765432"
GITLAB_HOOK_UUID = "1f0e3b6a-52c4-4d8e-9a71-3c2b5d7e9f10"
# Where each tracker's requests come from, as API Gateway reports it (documentation addresses for the new ones).
SOURCE_IPS = {
    "github": "140.82.115.17",
    "jira": "18.246.31.226",
    "gitlab": "203.0.113.17",
    "linear": "198.51.100.42",
}

# (event file name, tracker, payload file, event type header (GitHub), delivery id, epoch seconds received)
GITHUB_DELIVERIES = [
    ("github_ping", "github_ping.json", "ping", "5b1e7c00-c6a9-11f0-8e1a-6d2f0c3a9b01", 1795165200),
    (
        "github_issues_opened",
        "github_issues_opened.json",
        "issues",
        "8c2a4e10-c6ae-11f0-9d3c-2a7b5e1f0c42",
        1795166100,
    ),
    (
        "github_issues_labeled_blocked",
        "github_issues_labeled_blocked.json",
        "issues",
        "a41f9b20-c6b5-11f0-8f7e-4c1d3b5a7e63",
        1795168931,
    ),
    (
        "github_pull_request_opened",
        "github_pull_request_opened.json",
        "pull_request",
        "c7d3e530-c79e-11f0-9a2b-5e3f1d7c9b84",
        1795258800,
    ),
    (
        "github_pull_request_closed_merged",
        "github_pull_request_closed_merged.json",
        "pull_request",
        "e2b6f840-c7c7-11f0-8c4d-7a5b3e9f1da5",
        1795279127,
    ),
    (
        "github_issues_closed",
        "github_issues_closed.json",
        "issues",
        "f9c8a950-c7c7-11f0-9e6f-1b7d5c3a9fc6",
        1795279205,
    ),
]
# (event file name, payload file, X-Atlassian-Webhook-Identifier)
JIRA_DELIVERIES = [
    ("jira_issue_created", "jira_issue_created.json", "8f3a2b1c-4d5e-4f60-9a7b-000000010001"),
    (
        "jira_issue_updated_in_progress",
        "jira_issue_updated_in_progress.json",
        "8f3a2b1c-4d5e-4f60-9a7b-000000010002",
    ),
    ("jira_issue_updated_done", "jira_issue_updated_done.json", "8f3a2b1c-4d5e-4f60-9a7b-000000010003"),
    ("jira_issue_deleted", "jira_issue_deleted.json", "8f3a2b1c-4d5e-4f60-9a7b-000000010004"),
]


# (event file name, payload file, X-Gitlab-Event, Idempotency-Key, X-Gitlab-Event-UUID)
GITLAB_DELIVERIES = [
    (
        "gitlab_issue_opened",
        "gitlab_issue_opened.json",
        "Issue Hook",
        "6a1c0e52-3f7b-4d2a-9e18-b4c5d6e7f801",
        "2b7d9f41-8c3e-4a5b-b6c7-d8e9f0a1b201",
    ),
    (
        "gitlab_issue_labeled_in_review",
        "gitlab_issue_labeled_in_review.json",
        "Issue Hook",
        "6a1c0e52-3f7b-4d2a-9e18-b4c5d6e7f802",
        "2b7d9f41-8c3e-4a5b-b6c7-d8e9f0a1b202",
    ),
    (
        "gitlab_issue_closed",
        "gitlab_issue_closed.json",
        "Issue Hook",
        "6a1c0e52-3f7b-4d2a-9e18-b4c5d6e7f803",
        "2b7d9f41-8c3e-4a5b-b6c7-d8e9f0a1b203",
    ),
    (
        "gitlab_work_item_task_in_progress",
        "gitlab_work_item_task_in_progress.json",
        "Issue Hook",
        "6a1c0e52-3f7b-4d2a-9e18-b4c5d6e7f804",
        "2b7d9f41-8c3e-4a5b-b6c7-d8e9f0a1b204",
    ),
    (
        "gitlab_merge_request_merged",
        "gitlab_merge_request_merged.json",
        "Merge Request Hook",
        "6a1c0e52-3f7b-4d2a-9e18-b4c5d6e7f805",
        "2b7d9f41-8c3e-4a5b-b6c7-d8e9f0a1b205",
    ),
]
# (event file name, payload file, Linear-Delivery)
LINEAR_DELIVERIES = [
    ("linear_issue_created", "linear_issue_created.json", "3e9a1f27-5c4b-4d8e-a0f1-6b2c7d8e9f01"),
    ("linear_issue_in_progress", "linear_issue_in_progress.json", "3e9a1f27-5c4b-4d8e-a0f1-6b2c7d8e9f02"),
    ("linear_issue_completed", "linear_issue_completed.json", "3e9a1f27-5c4b-4d8e-a0f1-6b2c7d8e9f03"),
    ("linear_issue_removed", "linear_issue_removed.json", "3e9a1f27-5c4b-4d8e-a0f1-6b2c7d8e9f04"),
]


def compact(payload_file: str) -> str:
    """The payload as a tracker sends it: one line of JSON, non-ASCII kept as UTF-8."""
    doc = json.loads((PAYLOADS / payload_file).read_text(encoding="utf-8"))
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def hmac_hex(secret: str, body: str, digest: str = "sha256") -> str:
    return hmac.new(secret.encode(), body.encode("utf-8"), digest).hexdigest()


def apigw_event(
    tracker: str, headers: dict[str, str], body: str, epoch: int, request_id: str
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event for ``POST /webhooks/<tracker>``."""
    path = f"/webhooks/{tracker}"
    all_headers = {
        "accept": "*/*",
        "content-length": str(len(body.encode("utf-8"))),
        "host": API_HOST,
        "x-amzn-trace-id": f"Root=1-{epoch:08x}-{hashlib.sha256(request_id.encode()).hexdigest()[:24]}",
        "x-forwarded-for": SOURCE_IPS.get(tracker, "192.0.2.1"),
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        **headers,
    }
    return {
        "version": "2.0",
        "routeKey": "POST /webhooks/{tracker}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": dict(sorted(all_headers.items())),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": API_HOST.split(".", 1)[0],
            "domainName": API_HOST,
            "domainPrefix": API_HOST.split(".", 1)[0],
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": all_headers["x-forwarded-for"],
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "POST /webhooks/{tracker}",
            "stage": "$default",
            "time": _clf_time(epoch),
            "timeEpoch": epoch * 1000,
        },
        "pathParameters": {"tracker": tracker},
        "body": body,
        "isBase64Encoded": False,
    }


def github_event(
    payload_file: str, event_type: str, delivery: str, epoch: int, request_id: str, form: bool = False
) -> dict[str, Any]:
    body = compact(payload_file)
    content_type = "application/json"
    if form:
        body = urlencode({"payload": body})
        content_type = "application/x-www-form-urlencoded"
    headers = {
        "content-type": content_type,
        "user-agent": "GitHub-Hookshot/8c3f0e1",
        "x-github-delivery": delivery,
        "x-github-event": event_type,
        "x-github-hook-id": GITHUB_HOOK_ID,
        "x-github-hook-installation-target-id": "123456789",
        "x-github-hook-installation-target-type": "repository",
        "x-hub-signature": "sha1=" + hmac_hex(GITHUB_SECRET, body, "sha1"),
        "x-hub-signature-256": "sha256=" + hmac_hex(GITHUB_SECRET, body),
    }
    return apigw_event("github", headers, body, epoch, request_id)


def jira_event(payload_file: str, identifier: str, request_id: str) -> dict[str, Any]:
    body = compact(payload_file)
    epoch = json.loads(body)["timestamp"] // 1000 + 1
    headers = {
        "content-type": "application/json; charset=UTF-8",
        "user-agent": "Atlassian Webhook HTTP Client",
        "x-atlassian-webhook-flow": "Primary",
        "x-atlassian-webhook-identifier": identifier,
        "x-hub-signature": "sha256=" + hmac_hex(JIRA_SECRET, body),
    }
    return apigw_event("jira", headers, body, epoch, request_id)


def gitlab_event(
    payload_file: str,
    event_type: str,
    idempotency_key: str,
    event_uuid: str,
    request_id: str,
    signed: bool = False,
) -> dict[str, Any]:
    """A GitLab delivery: with the hook's secret token (default), or ``signed`` with its signing token instead.

    GitLab 19 sends webhook-id (= Idempotency-Key) and webhook-timestamp on every delivery, and
    webhook-signature only when the hook has a signing token. The time is a second after the object's update.
    """
    body = compact(payload_file)
    updated = json.loads(body)["object_attributes"]["updated_at"]
    epoch = int(_parse_time(updated).timestamp()) + 1
    headers = {
        "content-type": "application/json",
        "user-agent": "GitLab/19.1.0-ee",
        "idempotency-key": idempotency_key,
        "webhook-id": idempotency_key,
        "webhook-timestamp": str(epoch),
        "x-gitlab-event": event_type,
        "x-gitlab-event-uuid": event_uuid,
        "x-gitlab-instance": "https://gitlab.com",
        "x-gitlab-webhook-uuid": GITLAB_HOOK_UUID,
    }
    if signed:
        headers["webhook-signature"] = _standard_webhooks_signature(
            GITLAB_SIGNING_SECRET, idempotency_key, epoch, body
        )
    else:
        headers["x-gitlab-token"] = GITLAB_TOKEN
    return apigw_event("gitlab", headers, body, epoch, request_id)


def linear_event(payload_file: str, delivery: str, request_id: str) -> dict[str, Any]:
    """A Linear delivery, signed with the sample secret; received a second after its webhookTimestamp."""
    body = compact(payload_file)
    epoch = json.loads(body)["webhookTimestamp"] // 1000 + 1
    headers = {
        "content-type": "application/json; charset=utf-8",
        "linear-delivery": delivery,
        "linear-event": "Issue",
        "linear-signature": hmac_hex(LINEAR_SECRET, body),
    }
    return apigw_event("linear", headers, body, epoch, request_id)


def _standard_webhooks_signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _parse_time(text: str) -> Any:
    import datetime as dt

    return dt.datetime.fromisoformat(text)


def build_events() -> dict[str, dict[str, Any]]:
    """Every sample event by file stem (deterministic: same payloads → same events)."""
    events: dict[str, dict[str, Any]] = {}
    for n, (name, payload, event_type, delivery, epoch) in enumerate(GITHUB_DELIVERIES, start=1):
        events[name] = github_event(payload, event_type, delivery, epoch, f"Ab1Cd2Ef3Gh{n:03d}=")
    name, payload, event_type, delivery, epoch = GITHUB_DELIVERIES[1]
    events[f"{name}_form"] = github_event(
        payload, event_type, delivery.replace("8c2a", "8c2b"), epoch, "Ab1Cd2Ef3Gh101=", form=True
    )
    for n, (name, payload, identifier) in enumerate(JIRA_DELIVERIES, start=1):
        events[name] = jira_event(payload, identifier, f"Jk4Lm5Np6Qr{n:03d}=")
    for n, (name, payload, event_type, key, event_uuid) in enumerate(GITLAB_DELIVERIES, start=1):
        events[name] = gitlab_event(payload, event_type, key, event_uuid, f"Gl7Ab8Cd9Ef{n:03d}=")
    name, payload, event_type, key, event_uuid = GITLAB_DELIVERIES[0]
    events[f"{name}_signed"] = gitlab_event(
        payload, event_type, key.replace("6a1c", "6a1d"), event_uuid, "Gl7Ab8Cd9Ef101=", signed=True
    )
    for n, (name, payload, delivery) in enumerate(LINEAR_DELIVERIES, start=1):
        events[name] = linear_event(payload, delivery, f"Ln1Ab2Cd3Ef{n:03d}=")
    return events


def render(event: dict[str, Any]) -> str:
    return json.dumps(event, indent=2, ensure_ascii=False) + "\n"


def _clf_time(epoch: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    events = build_events()
    stale = []
    for name, event in events.items():
        target = APIGW / f"{name}.json"
        text = render(event)
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(target.name)
        else:
            APIGW.mkdir(exist_ok=True)
            target.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run python events/generate.py):", ", ".join(stale), file=sys.stderr)
        return 1
    print(f"{len(events)} events {'checked' if args.check else 'written'} in {APIGW}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
