"""A local fake GitHub: webhooks it sends, and the REST endpoints of their deliveries.

    with FakeGitHub() as github:
        hook = github.add_hook("acme/webapp", url=receiver_url, secret="s3cret")
        github.delivery_faults.script(["drop"])          # the next delivery never reaches the receiver
        github.send_event(hook.hook_id, "issues", payload)
        # GET  {github.url}/repos/acme/webapp/hooks/{id}/deliveries           newest first, Link rel="next"
        # POST {github.url}/repos/acme/webapp/hooks/{id}/deliveries/{n}/attempts   → 202, sends it again

What it keeps faithful (docs.github.com, REST "Repository webhooks" / "Organization webhooks"):

- a delivery is signed with the hook's secret (``X-Hub-Signature-256``) and carries ``X-GitHub-Event``,
  ``X-GitHub-Delivery`` (the guid), ``X-GitHub-Hook-ID`` and the installation target headers; a redelivery
  sends the same headers and body again (same guid and signature) as a new attempt with ``redelivery: true``;
- the list is newest first, ``per_page`` at most 100, the next page by an opaque ``cursor`` in the ``Link``
  header; an attempt's ``status`` is ``OK`` for a 2xx answer, ``Invalid HTTP Response: <code>`` otherwise and
  ``failed to connect`` (``status_code`` 0) when the receiver could not be reached;
- ``Authorization: Bearer <token>`` (or ``token <token>``), else 401 "Bad credentials"; an unknown hook 404;
- rate limits: every answer carries ``x-ratelimit-limit/remaining/used/reset/resource``; when ``remaining`` is
  used up the answer is 403 "API rate limit exceeded" until ``reset``; ``secondary_limit(n, retry_after)``
  answers the next ``n`` requests 403 with ``retry-after``, as GitHub's secondary limits do.

Faults: ``faults`` (a FaultPlan) on the REST API, as in the Kantata sandbox; ``delivery_faults`` on the
webhooks it sends (``drop``: the receiver is never reached; a status: recorded as the receiver's answer
without sending). The redelivery POST sends synchronously before answering 202, so a test sees its effect
as soon as the call returns.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode

import requests
from kantata_sandbox.faults import DROP, DROP_AFTER, FaultPlan

from tracker_fakes.base import Answer, ApiRequest, FakeServer

DEFAULT_TOKEN: Final = "github-fake-token"  # noqa: S105 - the fake's documented test token
DEFAULT_RATE_LIMIT: Final = 5000
_LIST: Final = re.compile(
    r"^/(?:repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)|orgs/(?P<org>[^/]+))/hooks/(?P<hook>\d+)/deliveries$"
)
_ONE: Final = re.compile(
    r"^/(?:repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)|orgs/(?P<org>[^/]+))/hooks/(?P<hook>\d+)/deliveries/(?P<id>\d+)"
    r"(?P<attempts>/attempts)?$"
)


@dataclass(frozen=True, slots=True)
class FakeHook:
    hook_id: int
    owner: str
    repo: str | None
    url: str
    secret: str
    events: tuple[str, ...]

    @property
    def path(self) -> str:
        """The hook as the recovery settings name it (``repos/o/r/hooks/1`` or ``orgs/o/hooks/1``)."""
        if self.repo is None:
            return f"orgs/{self.owner}/hooks/{self.hook_id}"
        return f"repos/{self.owner}/{self.repo}/hooks/{self.hook_id}"


@dataclass(slots=True)
class DeliveryAttempt:
    """One attempt to deliver an event to a hook (what the deliveries list shows, plus the request)."""

    id: int
    hook_id: int
    guid: str
    event: str
    action: str | None
    delivered_at: dt.datetime
    redelivery: bool
    headers: dict[str, str]
    body: bytes
    status: str = ""
    status_code: int = 0
    duration: float = 0.0
    reached_receiver: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "OK"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "guid": self.guid,
            "delivered_at": self.delivered_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "redelivery": self.redelivery,
            "duration": round(self.duration, 2),
            "status": self.status,
            "status_code": self.status_code,
            "event": self.event,
            "action": self.action,
            "installation_id": None,
            "repository_id": None,
            "throttled_at": None,
        }


@dataclass(slots=True)
class _RateLimit:
    limit: int = DEFAULT_RATE_LIMIT
    used: int = 0
    reset_in: float = 3600.0
    reset_at: float = field(default_factory=lambda: time.time() + 3600.0)

    def refresh(self, now: float) -> None:
        if now >= self.reset_at:
            self.used = 0
            self.reset_at = now + self.reset_in

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-reset": str(int(self.reset_at)),
            "x-ratelimit-resource": "core",
        }


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FakeGitHub(FakeServer):
    """A fake GitHub on 127.0.0.1 (``url`` is the REST API root, as ``GITHUB_API_URL``)."""

    name = "fake-github"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        faults: FaultPlan | None = None,
        delivery_faults: FaultPlan | None = None,
        delivery_timeout: float = 10.0,
    ) -> None:
        super().__init__(host=host, port=port, faults=faults)
        self.token = token
        self.delivery_faults = delivery_faults if delivery_faults is not None else FaultPlan()
        self.delivery_timeout = delivery_timeout
        self._hook_ids = itertools.count(400_000_001)
        self._attempt_ids = itertools.count(7_000_000_001)
        self.hooks: dict[int, FakeHook] = {}
        self.attempts: list[DeliveryAttempt] = []
        self.rate = _RateLimit()
        self._secondary: list[float] = []  # retry-after of each pending secondary-limit answer

    def reset(self) -> None:
        """No hooks, no deliveries, no faults (API and deliveries), a full rate limit, an empty request log."""
        with self.lock:
            self.hooks.clear()
            self.attempts.clear()
            self.rate = _RateLimit()
            self._secondary.clear()
        self.delivery_faults.clear()
        super().reset()

    # ------------------------------------------------------------------ set-up

    def add_hook(
        self,
        repository: str | None = None,
        *,
        org: str | None = None,
        url: str,
        secret: str,
        events: Sequence[str] = ("issues", "pull_request"),
    ) -> FakeHook:
        """A repository hook (``repository="owner/repo"``) or an organization hook (``org="acme"``)."""
        if (repository is None) == (org is None):
            raise ValueError("give either repository='owner/repo' or org='name'")
        if repository is not None:
            owner, _, repo = repository.partition("/")
            if not owner or not repo:
                raise ValueError(f"repository must be owner/repo; got {repository!r}")
        else:
            owner, repo = str(org), None
        with self.lock:
            hook = FakeHook(next(self._hook_ids), owner, repo or None, url, secret, tuple(events))
            self.hooks[hook.hook_id] = hook
        return hook

    def set_rate_limit(self, limit: int, *, remaining: int | None = None, reset_in: float = 3600.0) -> None:
        """The primary limit: ``limit`` requests per window of ``reset_in`` seconds, ``remaining`` left now."""
        with self.lock:
            used = 0 if remaining is None else max(0, limit - remaining)
            self.rate = _RateLimit(limit=limit, used=used, reset_in=reset_in, reset_at=time.time() + reset_in)

    def reset_rate_limit(self) -> None:
        """End the current window now (as if its reset time had come)."""
        with self.lock:
            self.rate.used = 0
            self.rate.reset_at = time.time() + self.rate.reset_in

    def secondary_limit(self, count: int = 1, retry_after: float | None = 60.0) -> None:
        """Answer the next ``count`` API requests with a secondary rate limit (403, ``retry-after`` if given)."""
        with self.lock:
            self._secondary.extend([-1.0 if retry_after is None else float(retry_after)] * count)

    # ------------------------------------------------------------------ GitHub's side: sending webhooks

    def send_event(
        self, hook_id: int, event: str, payload: Mapping[str, Any] | bytes, *, guid: str | None = None
    ) -> DeliveryAttempt:
        """GitHub delivers ``event`` to the hook: a new guid (unless given), signed, sent unless a delivery
        fault says otherwise; the attempt is recorded either way and returned."""
        with self.lock:
            hook = self.hooks[hook_id]
        body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        action = None
        if not isinstance(payload, bytes) and isinstance(payload.get("action"), str):
            action = str(payload["action"])
        guid = guid or str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/fake",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid,
            "X-GitHub-Hook-ID": str(hook.hook_id),
            "X-GitHub-Hook-Installation-Target-Type": "repository" if hook.repo else "organization",
            "X-GitHub-Hook-Installation-Target-ID": str(abs(hash(hook.path)) % 10**9),
            "X-Hub-Signature-256": sign(hook.secret, body),
        }
        return self._attempt(hook, guid, event, action, headers, body, redelivery=False)

    def _attempt(
        self,
        hook: FakeHook,
        guid: str,
        event: str,
        action: str | None,
        headers: dict[str, str],
        body: bytes,
        *,
        redelivery: bool,
    ) -> DeliveryAttempt:
        with self.lock:
            attempt = DeliveryAttempt(
                id=next(self._attempt_ids),
                hook_id=hook.hook_id,
                guid=guid,
                event=event,
                action=action,
                delivered_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
                redelivery=redelivery,
                headers=dict(headers),
                body=body,
            )
        decision = self.delivery_faults.decide("POST", "/webhook")
        started = time.monotonic()
        if decision.action == DROP:
            attempt.status, attempt.status_code = "failed to connect", 0
        elif decision.action == "status" and decision.status is not None:
            attempt.status_code = decision.status
            attempt.status = (
                "OK" if 200 <= decision.status < 300 else f"Invalid HTTP Response: {decision.status}"
            )
        else:
            self._post(hook, attempt)
            if decision.action == DROP_AFTER:  # reached the receiver, but GitHub never saw the answer
                attempt.status, attempt.status_code = "timed out", 0
        attempt.duration = time.monotonic() - started
        with self.lock:
            self.attempts.append(attempt)
        return attempt

    def _post(self, hook: FakeHook, attempt: DeliveryAttempt) -> None:
        try:
            # A session per delivery, closed at once: no keep-alive connection outlives the fake.
            response = requests.post(
                hook.url, data=attempt.body, headers=attempt.headers, timeout=self.delivery_timeout
            )
        except requests.Timeout:
            attempt.status, attempt.status_code = "timed out", 0
            attempt.reached_receiver = True  # it may have been taken
            return
        except requests.RequestException:
            attempt.status, attempt.status_code = "failed to connect", 0
            return
        attempt.reached_receiver = True
        attempt.status_code = response.status_code
        attempt.status = (
            "OK" if 200 <= response.status_code < 300 else f"Invalid HTTP Response: {response.status_code}"
        )

    def deliveries(self, hook_id: int | None = None) -> list[DeliveryAttempt]:
        """Every attempt (of one hook), oldest first."""
        with self.lock:
            return [a for a in self.attempts if hook_id is None or a.hook_id == hook_id]

    # ------------------------------------------------------------------ the REST API

    def fault_answer(self, status: int, retry_after: str | None) -> Answer:
        answer = super().fault_answer(status, retry_after)
        return Answer(
            status, {**answer.body, "documentation_url": "https://docs.github.com/rest"}, answer.headers
        )

    def api(self, request: ApiRequest) -> Answer:
        with self.lock:
            if self._secondary:
                wait = self._secondary.pop(0)
                headers = {"retry-after": f"{wait:g}"} if wait >= 0 else {}
                return Answer(
                    403,
                    {
                        "message": "You have exceeded a secondary rate limit. Please wait a few minutes before "
                        "you try again.",
                        "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                    },
                    headers,
                )
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "token") or token.strip() != self.token:
            return Answer(
                401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
            )
        with self.lock:
            self.rate.refresh(time.time())
            if self.rate.remaining <= 0:
                return Answer(
                    403,
                    {
                        "message": "API rate limit exceeded for user ID 1.",
                        "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                    },
                    self.rate.headers(),
                )
            self.rate.used += 1
            limits = self.rate.headers()
        answer = self._route(request)
        return Answer(answer.status, answer.body, {**limits, **answer.headers})

    def _hook_for(self, match: re.Match[str]) -> FakeHook | None:
        with self.lock:
            hook = self.hooks.get(int(match["hook"]))
        if hook is None:
            return None
        if match["org"]:
            return hook if hook.repo is None and hook.owner.lower() == match["org"].lower() else None
        same = hook.repo is not None and hook.owner.lower() == match["owner"].lower()
        return hook if same and str(hook.repo).lower() == match["repo"].lower() else None

    def _route(self, request: ApiRequest) -> Answer:
        not_found = Answer(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        listing = _LIST.match(request.path)
        if listing is not None:
            if request.method != "GET":
                return not_found
            hook = self._hook_for(listing)
            return not_found if hook is None else self._list(hook, request)
        one = _ONE.match(request.path)
        if one is None:
            return not_found
        hook = self._hook_for(one)
        if hook is None:
            return not_found
        with self.lock:
            found = [a for a in self.attempts if a.hook_id == hook.hook_id and a.id == int(one["id"])]
        if not found:
            return not_found
        original = found[0]
        if one["attempts"]:
            if request.method != "POST":
                return not_found
            self._attempt(
                hook,
                original.guid,
                original.event,
                original.action,
                original.headers,
                original.body,
                redelivery=True,
            )
            return Answer(202, {})
        if request.method != "GET":
            return not_found
        doc = original.to_json()
        doc["request"] = {"headers": dict(original.headers), "payload": json.loads(original.body or b"null")}
        doc["response"] = {"headers": {}, "payload": None}
        doc["url"] = hook.url
        return Answer(200, doc)

    def _list(self, hook: FakeHook, request: ApiRequest) -> Answer:
        try:
            per_page = min(100, max(1, int(request.query.get("per_page", "30"))))
        except ValueError:
            return Answer(422, {"message": "Validation Failed", "errors": [{"field": "per_page"}]})
        cursor = request.query.get("cursor")
        before: int | None = None
        if cursor:
            if not cursor.startswith("v1_") or not cursor[3:].isdigit():
                return Answer(400, {"message": "Invalid cursor"})
            before = int(cursor[3:])
        with self.lock:
            items = sorted(
                (a for a in self.attempts if a.hook_id == hook.hook_id), key=lambda a: a.id, reverse=True
            )
        if before is not None:
            items = [a for a in items if a.id < before]
        page, rest = items[:per_page], items[per_page:]
        headers: dict[str, str] = {}
        if rest:
            query = urlencode({"per_page": per_page, "cursor": f"v1_{page[-1].id}"})
            headers["Link"] = f'<{self.url}{request.path}?{query}>; rel="next"'
        return Answer(200, [a.to_json() for a in page], headers)

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {
                "ok": True,
                "url": self.url,
                "hooks": [h.path for h in self.hooks.values()],
                "deliveries": len(self.attempts),
                "rate_limit": {"limit": self.rate.limit, "remaining": self.rate.remaining},
            }
