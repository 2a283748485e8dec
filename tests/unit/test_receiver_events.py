"""The committed sample events are exactly what events/generate.py builds from the payload fixtures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.unit.test_receiver_app import GENERATE

ROOT = Path(__file__).resolve().parents[2]


def test_committed_events_equal_the_generator_output() -> None:
    built = GENERATE.build_events()
    committed = {path.stem for path in (ROOT / "events/apigw").glob("*.json")}
    assert committed == set(built)
    for name, event in built.items():
        assert (ROOT / "events/apigw" / f"{name}.json").read_text(encoding="utf-8") == GENERATE.render(
            event
        ), name


@pytest.mark.parametrize("name", sorted(GENERATE.build_events()))
def test_each_event_is_signed_with_the_documented_sample_secret(name: str) -> None:
    event = json.loads((ROOT / "events/apigw" / f"{name}.json").read_text())
    body = event["body"].encode()
    headers = event["headers"]
    if name.startswith("github"):
        expected = hmac.new(b"github-sample-secret", body, hashlib.sha256).hexdigest()
        assert headers["x-hub-signature-256"] == f"sha256={expected}"
    elif name.startswith("jira"):
        expected = hmac.new(b"jira-sample-secret", body, hashlib.sha256).hexdigest()
        assert headers["x-hub-signature"] == f"sha256={expected}"
    elif name.startswith("linear"):
        expected = hmac.new(b"linear-sample-secret", body, hashlib.sha256).hexdigest()
        assert headers["linear-signature"] == expected  # no prefix
    elif name.endswith("_signed"):
        # Standard Webhooks: key = base64 part of the whsec_ secret; message = id.timestamp.body
        assert GENERATE.GITLAB_SIGNING_SECRET == "whsec_a2FudGF0YS1icmlkZ2UgZ2l0bGFiIHNhbXBsZSBrZXk="
        key = base64.b64decode(GENERATE.GITLAB_SIGNING_SECRET.removeprefix("whsec_"))
        message = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()
        assert headers["webhook-signature"] == f"v1,{expected}"
        assert headers["webhook-id"] == headers["idempotency-key"]
        assert "x-gitlab-token" not in headers
    else:
        assert headers["x-gitlab-token"] == "gitlab-sample-token"
        assert "webhook-signature" not in headers


def test_form_variant_carries_the_same_payload_as_the_json_one() -> None:
    events = GENERATE.build_events()
    form = parse_qs(events["github_issues_opened_form"]["body"])["payload"][0]
    assert json.loads(form) == json.loads(events["github_issues_opened"]["body"])


def test_object_versions_increase_along_each_sequence() -> None:
    # The worker's ordering guard relies on these fixtures telling a coherent story.
    def load(name: str) -> Any:
        return json.loads((ROOT / "events/payloads" / f"{name}.json").read_text())

    issue = [
        load(n)["issue"]["updated_at"]
        for n in ("github_issues_opened", "github_issues_labeled_blocked", "github_issues_closed")
    ]
    assert issue == sorted(issue)
    assert len(set(issue)) == 3
    pulls = [
        load(n)["pull_request"]["updated_at"]
        for n in ("github_pull_request_opened", "github_pull_request_closed_merged")
    ]
    assert pulls == sorted(pulls)
    assert len(set(pulls)) == 2
    jira = [
        "jira_issue_created",
        "jira_issue_updated_in_progress",
        "jira_issue_updated_done",
        "jira_issue_deleted",
    ]
    stamps = [load(n)["timestamp"] for n in jira]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 4
    categories = [load(n)["issue"]["fields"]["status"]["statusCategory"]["key"] for n in jira[:3]]
    assert categories == ["new", "indeterminate", "done"]

    gitlab_issue = [
        load(n)["object_attributes"]["updated_at"]
        for n in ("gitlab_issue_opened", "gitlab_issue_labeled_in_review", "gitlab_issue_closed")
    ]
    assert gitlab_issue == sorted(gitlab_issue)
    assert len(set(gitlab_issue)) == 3
    linear = [
        "linear_issue_created",
        "linear_issue_in_progress",
        "linear_issue_completed",
        "linear_issue_removed",
    ]
    updated = [load(n)["data"]["updatedAt"] for n in linear]
    assert updated == sorted(updated)
    assert len(set(updated)) == 4
    stamps = [load(n)["webhookTimestamp"] for n in linear]
    assert stamps == sorted(stamps)
    assert [load(n)["data"]["state"]["type"] for n in linear] == [
        "unstarted",
        "started",
        "completed",
        "completed",
    ]
