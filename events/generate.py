"""Build the invoke-ready API Gateway (HTTP API, payload 2.0) events in events/apigw/ from events/payloads/.

Each event carries the raw payload as the tracker would send it (compact JSON, or form-encoded for the
``*_form`` variant) and real signature headers computed with the sample secrets documented in
docs/receiver.md, so the events pass the receiver's verification and stay consistent with the payloads.

    python events/generate.py          # rewrite events/apigw/*.json
    python events/generate.py --check  # exit 1 if a committed event differs from what would be generated
"""

from __future__ import annotations

import argparse
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
API_HOST = "abc123defg.execute-api.eu-west-1.amazonaws.com"
GITHUB_HOOK_ID = "498765432"

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
        "x-forwarded-for": "140.82.115.17" if tracker == "github" else "18.246.31.226",
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
