"""Property tests over arbitrary headers and bodies: no 5xx for client input, nothing unverified queued."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from kantata_bridge.receiver.credentials import StaticCredentials
from kantata_bridge.receiver.errors import EnqueueError
from kantata_bridge.receiver.memory import MemoryDeliveryQueue, MemoryPayloadStore
from kantata_bridge.receiver.service import Receiver
from kantata_bridge.receiver.settings import load_settings
from kantata_bridge.trackers.registry import ADAPTERS

from tests.unit.test_receiver_app import APP, CONTEXT, GENERATE

SECRETS = {
    "github": ["gh-secret"],
    "jira": ["jira-secret"],
    "jira_tokens": ["tok"],
    "gitlab_tokens": ["gl-tok"],
    "gitlab": ["whsec_" + base64.b64encode(b"gitlab-property-test-signing-key").decode()],
    "linear": ["lin-secret"],
}
# The receiver's clock in these tests (epoch seconds); signed timestamps are drawn around it.
NOW = 1_795_166_100
# Trackers as the tests name them: "<tracker>-<mode>" picks a non-default auth mode.
TRACKER_MODES = {
    "jira-token": ("jira", "JIRA_AUTH_MODE", "shared-token"),
    "gitlab-signed": ("gitlab", "GITLAB_AUTH_MODE", "signature"),
}

HEADER_NAMES = st.sampled_from(
    [
        "content-type",
        "x-github-event",
        "x-github-delivery",
        "x-github-hook-id",
        "x-hub-signature-256",
        "x-hub-signature",
        "x-atlassian-webhook-identifier",
        "x-bridge-token",
        "user-agent",
        "x-gitlab-event",
        "x-gitlab-token",
        "idempotency-key",
        "x-gitlab-event-uuid",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "linear-event",
        "linear-delivery",
        "linear-signature",
    ]
)
# Values a forger or a broken proxy might send: control characters, lone surrogates, non-ASCII, kilobytes.
HEADER_VALUES = st.one_of(
    st.text(max_size=80),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=40),
    st.text(max_size=3000, min_size=257),
    st.sampled_from(
        [
            "issues",
            "pull_request",
            "ping",
            "application/json",
            "application/x-www-form-urlencoded",
            "sha256=",
            "tok",
            "gl-tok",
            "Issue Hook",
            "Merge Request Hook",
            "Issue",
            str(NOW),
            "v1,AAAA",
            "0" * 64,
        ]
    ),
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
GITHUB_BASE = st.fixed_dictionaries(
    {"x-github-event": st.sampled_from(["issues", "pull_request", "ping", "push"])},
    optional={"x-github-delivery": st.uuids().map(str), "x-github-hook-id": st.integers(1, 10**9).map(str)},
)
JIRA_BASE = st.fixed_dictionaries({}, optional={"x-atlassian-webhook-identifier": st.uuids().map(str)})
GITLAB_BASE = st.fixed_dictionaries(
    {
        "x-gitlab-event": st.sampled_from(
            ["Issue Hook", "Merge Request Hook", "Confidential Issue Hook", "Push Hook"]
        )
    },
    optional={
        "idempotency-key": st.uuids().map(str),
        "x-gitlab-event-uuid": st.uuids().map(str),
        "webhook-id": st.uuids().map(str),
    },
)
LINEAR_BASE = st.fixed_dictionaries(
    {},
    optional={"linear-event": st.sampled_from(["Issue", "Comment"]), "linear-delivery": st.uuids().map(str)},
)
# webhookTimestamp values (ms) inside, at the edge of and outside Linear's 8-hour tolerance, and odd ones.
LINEAR_STAMPS = st.one_of(
    st.integers((NOW - 8 * 3600) * 1000, (NOW + 300) * 1000),
    st.integers(0, 2**62),
    st.sampled_from([None, "1795166100000", True, 1.5, -1]),
)
BODIES = st.one_of(
    st.binary(max_size=400),
    st.fixed_dictionaries({"action": st.text(max_size=10)}, optional={"issue": JSONISH}).map(
        lambda doc: json.dumps(doc).encode()
    ),
    JSONISH.map(lambda doc: json.dumps(doc).encode()),
    st.fixed_dictionaries(
        {"webhookEvent": st.sampled_from(["jira:issue_created", "jira:issue_updated", "comment_created"])},
        optional={"issue": st.fixed_dictionaries({"id": st.text(max_size=5)}), "timestamp": st.integers()},
    ).map(lambda doc: json.dumps(doc).encode()),
)
# Bodies each tracker accepts, so that signed deliveries reach the queue often enough for the "queued
# byte for byte" checks to run (with BODIES alone a signed Jira delivery was queued in none of 300 examples).
WELL_FORMED_BODIES = st.one_of(
    st.fixed_dictionaries({"action": st.sampled_from(["opened", "closed", "labeled"]), "issue": JSONISH}).map(
        lambda doc: json.dumps(doc).encode()
    ),
    st.fixed_dictionaries(
        {
            "webhookEvent": st.sampled_from(["jira:issue_created", "jira:issue_updated"]),
            "issue": st.fixed_dictionaries({"id": st.integers(1, 99999).map(str)}),
            "timestamp": st.integers(1, 2**41),
        }
    ).map(lambda doc: json.dumps(doc).encode()),
    st.fixed_dictionaries(
        {
            "object_kind": st.sampled_from(["issue", "merge_request", "work_item"]),
            "object_attributes": st.fixed_dictionaries(
                {"id": st.integers(1, 10**9), "action": st.sampled_from(["open", "update", "merge"])},
                optional={"updated_at": st.just("2026-11-20T09:02:17.412Z")},
            ),
        }
    ).map(lambda doc: json.dumps(doc).encode()),
    st.fixed_dictionaries(
        {
            "type": st.just("Issue"),
            "action": st.sampled_from(["create", "update", "remove"]),
            "webhookTimestamp": LINEAR_STAMPS,
        },
        optional={"data": JSONISH},
    ).map(lambda doc: json.dumps(doc).encode()),
)


def run(
    tracker: str,
    headers: dict[str, str],
    body: bytes,
    as_base64: bool,
    queue: MemoryDeliveryQueue,
    sign: bool,
    route: tuple[str, str] = ("POST", ""),
) -> dict[str, Any]:
    environ = {
        "QUEUE_URL": "memory://q",
        "WEBHOOK_SECRETS_NAME": "s",
        "MAX_BODY_BYTES": "300",
        "ENABLED_TRACKERS": "github,jira,gitlab,linear",
    }
    mode = None
    if tracker in TRACKER_MODES:
        tracker, variable, mode = TRACKER_MODES[tracker]
        environ[variable] = mode
    receiver = Receiver(
        load_settings(ADAPTERS, environ),
        ADAPTERS,
        StaticCredentials(SECRETS),
        queue,
        MemoryPayloadStore(),
        now=lambda: NOW,
    )
    headers = dict(headers)
    if sign:
        headers.update(signature_headers(tracker, mode, headers, body))
    text = base64.b64encode(body).decode() if as_base64 else body.decode("utf-8", errors="surrogateescape")
    request: dict[str, Any] = GENERATE.apigw_event(tracker, headers, "", 1795166100, "rid")
    method, suffix = route
    request["rawPath"] = request["requestContext"]["http"]["path"] = f"/webhooks/{tracker}{suffix}"
    request["requestContext"]["http"]["method"] = method
    request.update(body=text, isBase64Encoded=as_base64)
    original = APP.default_receiver
    APP.default_receiver = lambda: receiver
    try:
        response: dict[str, Any] = APP.lambda_handler(request, CONTEXT)
    finally:
        APP.default_receiver = original
    return response


def signature_headers(tracker: str, mode: str | None, headers: dict[str, str], body: bytes) -> dict[str, str]:
    """What the genuine sender adds to ``headers`` for ``body`` (nothing for a tracker the bridge does not know)."""
    if tracker == "jira" and mode == "shared-token":
        return {"x-bridge-token": SECRETS["jira_tokens"][0]}
    if tracker == "gitlab" and mode is None:
        return {"x-gitlab-token": SECRETS["gitlab_tokens"][0]}
    if tracker == "gitlab":
        message_id = headers.get("webhook-id") or "msg-1"
        key = base64.b64decode(SECRETS["gitlab"][0].removeprefix("whsec_"))
        digest = hmac.new(key, f"{message_id}.{NOW}.".encode() + body, hashlib.sha256).digest()
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(NOW),
            "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        }
    if tracker == "linear":
        return {"linear-signature": hmac.new(SECRETS["linear"][0].encode(), body, hashlib.sha256).hexdigest()}
    if tracker in ("github", "jira"):
        name = "x-hub-signature-256" if tracker == "github" else "x-hub-signature"
        secret = SECRETS[tracker][0].encode()
        return {name: "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()}
    return {}


def fresh_linear_body(body: bytes) -> bool:
    """Whether a Linear body carries a webhookTimestamp within the default 8-hour tolerance of NOW."""
    try:
        stamp = json.loads(body).get("webhookTimestamp")
    except (ValueError, AttributeError, RecursionError):
        return False
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        return False
    return NOW - 8 * 3600 <= stamp / 1000 <= NOW + 300


def verified(tracker: str, headers: dict[str, str], body: bytes, signed: bool) -> bool:
    """Whether a delivery may be queued: signed by the sender (or carrying its token), and fresh if timed."""
    if tracker == "jira-token":
        return signed or headers.get("x-bridge-token", "").strip() == "tok"
    if tracker == "gitlab":
        return signed or headers.get("x-gitlab-token", "").strip() == "gl-tok"
    if tracker == "linear":
        return signed and fresh_linear_body(body)
    return signed and tracker in ("github", "jira", "gitlab-signed")


COMMON = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@COMMON
@given(
    tracker=st.sampled_from(
        [
            "github",
            "github",
            "jira",
            "jira",
            "jira-token",
            "gitlab",
            "gitlab",
            "gitlab-signed",
            "gitlab-signed",
            "linear",
            "linear",
            "bitbucket",
            "GitHub",
            "GitLab",
            "",
            "gi\u0308t",
        ]
    ),
    base=GITHUB_BASE,
    jira_base=JIRA_BASE,
    gitlab_base=GITLAB_BASE,
    linear_base=LINEAR_BASE,
    extra=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4),
    body=BODIES | WELL_FORMED_BODIES,
    as_base64=st.booleans(),
    sign=st.booleans(),
    capitals=st.booleans(),
)
def test_client_input_never_gets_a_5xx_and_only_verified_deliveries_are_queued(
    tracker: str,
    base: dict[str, str],
    jira_base: dict[str, str],
    gitlab_base: dict[str, str],
    linear_base: dict[str, str],
    extra: dict[str, str],
    body: bytes,
    as_base64: bool,
    sign: bool,
    capitals: bool,
) -> None:
    headers = {**base, **jira_base, **gitlab_base, **linear_base, **extra}
    if capitals:
        headers = {name.title(): value for name, value in headers.items()}
    # The queue refuses what SQS would refuse (size, characters): a 503 here would be the receiver's bug.
    queue = MemoryDeliveryQueue()
    response = run(tracker, headers, body, as_base64, queue, sign)
    status = response["statusCode"]
    event(f"{tracker or 'empty'} answered {status}")
    assert status in {200, 202, 400, 401, 404, 413}
    assert json.loads(response["body"])["status"] in {"ok", "ignored", "queued", "rejected"}
    lower = {name.lower(): value for name, value in headers.items()}
    if status == 202:
        assert verified(tracker, lower, body, sign)
        (envelope,) = queue.envelopes
        assert envelope.body == body
    else:
        assert queue.envelopes == []
    if not verified(tracker, lower, body, sign):
        assert status in {400, 401, 404, 413}  # 400 only for bodies that cannot be decoded at all


@COMMON
@given(
    route=st.tuples(
        st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "POST"]),
        st.sampled_from(["", "/", "/extra", "//"]),
    ).filter(lambda r: r != ("POST", "")),
    body=BODIES,
)
def test_other_methods_and_paths_are_404_and_queue_nothing(route: tuple[str, str], body: bytes) -> None:
    queue = MemoryDeliveryQueue()
    response = run("github", {"x-github-event": "issues"}, body, True, queue, True, route)
    assert response["statusCode"] == 404
    assert queue.envelopes == []


@COMMON
@given(
    tracker=st.sampled_from(["github", "jira", "gitlab", "gitlab-signed", "linear"]),
    base=GITHUB_BASE,
    gitlab_base=GITLAB_BASE,
    linear_base=LINEAR_BASE,
    extra=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4),
    body=BODIES | WELL_FORMED_BODIES,
    sign=st.booleans(),
)
def test_only_a_failing_queue_turns_a_delivery_into_a_5xx(
    tracker: str,
    base: dict[str, str],
    gitlab_base: dict[str, str],
    linear_base: dict[str, str],
    extra: dict[str, str],
    body: bytes,
    sign: bool,
) -> None:
    headers = {**base, **gitlab_base, **linear_base, **extra}
    queue = MemoryDeliveryQueue(fail_with=EnqueueError("queue_unavailable", "down"))
    response = run(tracker, headers, body, True, queue, sign)
    status = response["statusCode"]
    event(f"{tracker} answered {status}")
    assert status in {200, 400, 401, 413, 503}
    if status == 503:
        assert verified(tracker, headers, body, sign)


UNSIGNED_HEADERS = st.sampled_from(
    [
        "x-github-delivery",
        "x-github-hook-id",
        "x-github-hook-installation-target-type",
        "x-atlassian-webhook-identifier",
        "x-atlassian-webhook-retry",
        "idempotency-key",
        "x-gitlab-event-uuid",
        "x-gitlab-webhook-uuid",
        "x-gitlab-instance",
        "linear-delivery",
        "user-agent",
        "content-type",
    ]
)


@COMMON
@given(
    tracker=st.sampled_from(["github", "jira", "gitlab", "gitlab-signed", "linear"]),
    odd=st.dictionaries(UNSIGNED_HEADERS, HEADER_VALUES, min_size=1, max_size=4),
    as_base64=st.booleans(),
)
def test_genuine_delivery_with_odd_unsigned_headers_is_queued_or_refused_never_a_5xx(
    tracker: str, odd: dict[str, str], as_base64: bool
) -> None:
    # Headers other than the signature are not covered by it: a replay may carry anything in them.
    body = (
        b'{"action":"opened","webhookEvent":"jira:issue_updated","issue":{"id":"1"},"timestamp":1,'
        b'"type":"Issue","webhookTimestamp":%d}' % (NOW * 1000)
    )
    queue = MemoryDeliveryQueue()
    event_headers = {"x-github-event": "issues", "x-gitlab-event": "Issue Hook", "linear-event": "Issue"}
    response = run(tracker, {**event_headers, **odd}, body, as_base64, queue, True)
    status = response["statusCode"]
    event(f"{tracker} answered {status}")
    assert status in {202, 400}  # 400: a content type that says form-encoded for a JSON body
    if status == 202:
        (envelope,) = queue.envelopes
        assert envelope.body == body


@COMMON
@given(
    stamp=LINEAR_STAMPS,
    data=JSONISH,
    linear_base=LINEAR_BASE,
    extra=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=2),
    as_base64=st.booleans(),
)
def test_a_signed_linear_delivery_is_queued_only_when_its_signed_timestamp_is_fresh(
    stamp: Any, data: Any, linear_base: dict[str, str], extra: dict[str, str], as_base64: bool
) -> None:
    # Given a Linear delivery signed with the active secret, whatever its webhookTimestamp
    body = json.dumps({"type": "Issue", "action": "update", "data": data, "webhookTimestamp": stamp}).encode()
    headers = {**linear_base, **{k: v for k, v in extra.items() if k != "linear-signature"}}
    queue = MemoryDeliveryQueue()
    # When it arrives
    response = run("linear", headers, body, as_base64, queue, True)
    status = response["statusCode"]
    event(f"linear answered {status}")
    # Then it is queued exactly when its signed timestamp is within the tolerance, and refused otherwise
    if fresh_linear_body(body) and len(body) <= 300:
        assert status in {200, 202, 400}  # 200: Linear-Event names another entity; 400: an odd content type
    else:
        assert status in {401, 413}
        assert queue.envelopes == []
    if status == 202:
        (envelope,) = queue.envelopes
        assert envelope.body == body


@COMMON
@given(
    offset=st.one_of(st.integers(-400, 400), st.integers(-(10**9), 10**9)),
    signed_with=st.sampled_from(["active", "other"]),
    message_id=st.uuids().map(str),
)
def test_a_gitlab_standard_webhooks_delivery_is_queued_only_when_genuine_and_fresh(
    offset: int, signed_with: str, message_id: str
) -> None:
    # Given a GitLab delivery signed (Standard Webhooks) at NOW + offset, with the active or another secret
    body = b'{"object_kind":"issue","object_attributes":{"id":1,"action":"open"}}'
    secret = (
        SECRETS["gitlab"][0] if signed_with == "active" else "whsec_" + base64.b64encode(b"x" * 32).decode()
    )
    key = base64.b64decode(secret.removeprefix("whsec_"))
    timestamp = NOW + offset
    signature = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "x-gitlab-event": "Issue Hook",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(signature).decode(),
    }
    queue = MemoryDeliveryQueue()
    # When it arrives at a receiver in signature mode
    response = run("gitlab-signed", headers, body, True, queue, False)
    status = response["statusCode"]
    event(f"gitlab-signed answered {status}")
    # Then only a genuine signature within -300..+300 s of the clock is queued
    genuine_and_fresh = signed_with == "active" and timestamp >= 0 and -300 <= offset <= 300
    assert status == (202 if genuine_and_fresh else 401)
    assert len(queue.envelopes) == (1 if genuine_and_fresh else 0)
