"""A local fake Jira Cloud: issues, the webhooks it sends when they change, and the JQL search API.

    with FakeJira() as jira:
        jira.set_webhook(receiver_url, secret="jira-secret")
        jira.create_issue("PROJ-1", "Checkout fails")            # sends jira:issue_created
        jira.webhook_faults.set_drop_rate(1.0)                   # an outage longer than Jira's retries
        jira.update_issue("PROJ-1", status="Done")               # lost: the webhook never arrives
        # POST {jira.url}/rest/api/3/search/jql {"jql": ..., "fields": [...], "nextPageToken": ...}

What it keeps faithful (developer.atlassian.com, "Issue search" and "Webhooks"):

- ``POST /rest/api/3/search/jql`` takes ``jql``, ``fields``, ``maxResults`` (at most 100 here) and
  ``nextPageToken``; answers ``{"issues": [...], "nextPageToken": ..., "isLast": ...}``; only the requested
  ``fields`` are returned (``*all`` / ``*navigable`` for all; none requested: no fields, as the enhanced
  search does). ``GET /rest/api/3/field`` lists the fields, with "Flagged" as a custom field;
- JQL: a subset, refused with 400 and ``errorMessages`` when outside it: clauses joined by ``AND``, each
  ``project = KEY`` / ``project in (A, "B")`` / ``key = K`` / ``updated >= "<date>"`` (also ``>``, ``<``,
  ``<=``; a date ``yyyy-MM-dd HH:mm``, ``yyyy/MM/dd HH:mm`` or ``yyyy-MM-dd``, read in UTC, the fake
  account's time zone; or relative ``-15m``, ``-2h``, ``-1d``, ``-1w``), then ``ORDER BY updated|key
  ASC|DESC``;
- Basic authentication with the account's e-mail and API token, else 401;
- ``fields.updated`` as Jira writes it (``2026-11-22T10:00:00.000+0000``), strictly increasing per change;
- webhooks: the ``jira:issue_*`` body (timestamp, webhookEvent, user, issue with every field, changelog with a
  ``status`` item when the status changed), ``X-Atlassian-Webhook-Identifier`` (the same across retries),
  ``X-Hub-Signature: sha256=…`` (HMAC of the body with the webhook's secret), retried up to
  ``webhook_retries`` times (no waiting) on 408/409/425/429/5xx or no connection, as Jira retries.

Faults: ``faults`` on the REST API (as the Kantata sandbox), ``webhook_faults`` on each webhook attempt
(``drop``: never reaches the receiver; a status: recorded as the answer without sending).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import requests
from kantata_sandbox.faults import DROP, DROP_AFTER, FaultPlan

from tracker_fakes.base import Answer, ApiRequest, FakeServer

DEFAULT_EMAIL: Final = "bridge@example.com"
DEFAULT_API_TOKEN: Final = "jira-fake-token"  # noqa: S105 - the fake's documented test token
FLAGGED_FIELD: Final = "customfield_10021"
RETRIED_STATUSES: Final = frozenset({408, 409, 425, 429})
CATEGORIES: Final = {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}
_STANDARD_FIELDS: Final = (
    ("summary", "Summary"),
    ("status", "Status"),
    ("project", "Project"),
    ("labels", "Labels"),
    ("components", "Components"),
    ("priority", "Priority"),
    ("duedate", "Due date"),
    ("updated", "Updated"),
    ("created", "Created"),
    ("issuetype", "Issue Type"),
    ("description", "Description"),
)


class JqlError(ValueError):
    """The JQL is outside the subset the fake understands (answered 400 with errorMessages)."""


@dataclass(slots=True)
class FakeIssue:
    id: str
    key: str
    summary: str
    status: str
    category: str
    updated: dt.datetime
    created: dt.datetime
    labels: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    priority: str | None = "Medium"
    duedate: str | None = None
    flagged: bool = False
    description: str | None = None

    @property
    def project(self) -> str:
        return self.key.rsplit("-", 1)[0]

    def fields(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "status": {
                "name": self.status,
                "statusCategory": {
                    "key": self.category,
                    "name": CATEGORIES.get(self.category, self.category),
                },
            },
            "project": {"key": self.project, "name": f"Project {self.project}"},
            "labels": list(self.labels),
            "components": [{"name": c} for c in self.components],
            "priority": {"name": self.priority} if self.priority else None,
            "duedate": self.duedate,
            "updated": jira_time(self.updated),
            "created": jira_time(self.created),
            "issuetype": {"name": "Task"},
            "description": self.description,
            FLAGGED_FIELD: [{"value": "Impediment", "id": "10019"}] if self.flagged else None,
        }


@dataclass(frozen=True, slots=True)
class WebhookAttempt:
    identifier: str
    event: str
    key: str
    attempt: int
    status: int  # 0: never reached the receiver
    version: str


def jira_time(moment: dt.datetime) -> str:
    """``2026-11-22T10:00:00.000+0000``: how Jira writes ``created`` / ``updated``."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------- JQL subset


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed JQL query: a predicate over issues and a sort key."""

    match: Callable[[FakeIssue], bool]
    order: Callable[[FakeIssue], Any]
    descending: bool = False


_CLAUSE_PROJECT_IN: Final = re.compile(r"^project\s+in\s*\((?P<values>[^)]*)\)$", re.IGNORECASE)
_CLAUSE_EQUALS: Final = re.compile(r'^(?P<field>project|key)\s*=\s*(?P<value>"[^"]*"|[\w-]+)$', re.IGNORECASE)
_CLAUSE_UPDATED: Final = re.compile(
    r'^updated\s*(?P<op>>=|<=|>|<)\s*(?P<value>"[^"]*"|-?\d+[mhdw]|\S+)$', re.IGNORECASE
)
_RELATIVE: Final = re.compile(r"^-(?P<n>\d+)(?P<unit>[mhdw])$")
_UNITS: Final = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def _jql_time(value: str, now: dt.datetime) -> dt.datetime:
    text = _unquote(value)
    relative = _RELATIVE.match(text)
    if relative:
        return now - dt.timedelta(**{_UNITS[relative["unit"]]: int(relative["n"])})
    for pattern in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            return dt.datetime.strptime(text, pattern).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    raise JqlError(f"Date value '{text}' for field 'updated' is invalid.")


def parse_jql(jql: str, now: dt.datetime) -> Query:
    """Parse the subset described in the module docstring. Raises JqlError."""
    text = jql.strip()
    order: Callable[[FakeIssue], Any] = lambda issue: (issue.created, issue.key)  # noqa: E731
    descending = False
    split = re.split(r"\s+order\s+by\s+", text, flags=re.IGNORECASE)
    if len(split) > 2:
        raise JqlError("The fake Jira understands one ORDER BY clause.")
    if len(split) == 2:
        text, ordering = split
        sort = re.match(r"^(?P<field>updated|key|created)(?:\s+(?P<dir>asc|desc))?$", ordering.strip(), re.I)
        if sort is None:
            raise JqlError(f"The fake Jira cannot order by {ordering.strip()!r}.")
        name = sort["field"].lower()
        order = {
            "updated": lambda i: (i.updated, i.key),
            "key": lambda i: i.key,
            "created": lambda i: i.created,
        }[name]
        descending = (sort["dir"] or "asc").lower() == "desc"
    predicates: list[Callable[[FakeIssue], bool]] = []
    for clause in [c.strip() for c in re.split(r"\s+and\s+", text, flags=re.IGNORECASE) if c.strip()]:
        predicates.append(_clause(clause, now))
    if not predicates:
        raise JqlError("The fake Jira needs at least one clause (it does not search unbounded).")
    return Query(lambda issue: all(p(issue) for p in predicates), order, descending)


def _clause(clause: str, now: dt.datetime) -> Callable[[FakeIssue], bool]:
    found = _CLAUSE_PROJECT_IN.match(clause)
    if found:
        values = {_unquote(v).upper() for v in found["values"].split(",") if v.strip()}
        if not values:
            raise JqlError("project in () needs at least one project.")
        return lambda issue: issue.project.upper() in values
    found = _CLAUSE_EQUALS.match(clause)
    if found:
        value = _unquote(found["value"]).upper()
        if found["field"].lower() == "project":
            return lambda issue: issue.project.upper() == value
        return lambda issue: issue.key.upper() == value
    found = _CLAUSE_UPDATED.match(clause)
    if found:
        bound = _jql_time(found["value"], now)
        compare: dict[str, Callable[[dt.datetime], bool]] = {
            ">=": lambda t: t >= bound,
            ">": lambda t: t > bound,
            "<=": lambda t: t <= bound,
            "<": lambda t: t < bound,
        }
        test = compare[found["op"]]
        return lambda issue: test(issue.updated)
    raise JqlError(f"Error in the JQL Query: the fake Jira does not understand {clause!r}.")


# ---------------------------------------------------------------------- the fake


class FakeJira(FakeServer):
    """A fake Jira Cloud site on 127.0.0.1 (``url`` is the site, as ``JIRA_BASE_URL``)."""

    name = "fake-jira"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        email: str = DEFAULT_EMAIL,
        api_token: str = DEFAULT_API_TOKEN,
        faults: FaultPlan | None = None,
        webhook_faults: FaultPlan | None = None,
        webhook_retries: int = 5,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        super().__init__(host=host, port=port, faults=faults)
        self.email = email
        self.api_token = api_token
        self.webhook_faults = webhook_faults if webhook_faults is not None else FaultPlan()
        self.webhook_retries = webhook_retries
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.issues: dict[str, FakeIssue] = {}
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.webhook_attempts: list[WebhookAttempt] = []
        self._ids = itertools.count(10001)
        self._last_change: dt.datetime | None = None

    def reset(self) -> None:
        """No issues, no webhook, no faults, an empty request log."""
        with self.lock:
            self.issues.clear()
            self.webhook_url = self.webhook_secret = None
            self.webhook_attempts.clear()
            self._last_change = None
        self.webhook_faults.clear()
        super().reset()

    @property
    def auth_header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode()

    def set_webhook(self, url: str | None, secret: str | None = None) -> None:
        """Where changes are sent (None: nowhere), signed with ``secret``."""
        with self.lock:
            self.webhook_url, self.webhook_secret = url, secret

    # ------------------------------------------------------------------ Jira's side: changes and webhooks

    def _tick(self) -> dt.datetime:
        """Now, to the millisecond, strictly after the previous change (Jira's ``updated`` differs per edit)."""
        now = self.clock().astimezone(dt.UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_change is not None and now <= self._last_change:
            now = self._last_change + dt.timedelta(milliseconds=1)
        self._last_change = now
        return now

    def create_issue(
        self,
        key: str,
        summary: str,
        *,
        status: str = "To Do",
        category: str = "new",
        labels: Sequence[str] = (),
        components: Sequence[str] = (),
        priority: str | None = "Medium",
        duedate: str | None = None,
        flagged: bool = False,
        send_webhook: bool = True,
    ) -> FakeIssue:
        """Create an issue (now) and send ``jira:issue_created`` when a webhook is set."""
        with self.lock:
            if key in self.issues:
                raise ValueError(f"issue {key} exists")
            now = self._tick()
            issue = FakeIssue(
                str(next(self._ids)),
                key,
                summary,
                status,
                category,
                now,
                now,
                list(labels),
                list(components),
                priority,
                duedate,
                flagged,
            )
            self.issues[key] = issue
        if send_webhook:
            self._send_webhook("jira:issue_created", issue, None)
        return issue

    def update_issue(self, key: str, *, send_webhook: bool = True, **changes: Any) -> FakeIssue:
        """Change fields (``summary``, ``status`` + ``category``, ``labels``, ``components``, ``priority``,
        ``duedate``, ``flagged``), bump ``updated`` and send ``jira:issue_updated`` when a webhook is set."""
        allowed = {"summary", "status", "category", "labels", "components", "priority", "duedate", "flagged"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown issue fields: {', '.join(sorted(unknown))}")
        with self.lock:
            issue = self.issues[key]
            before = issue.status
            for name, value in changes.items():
                setattr(issue, name, list(value) if name in ("labels", "components") else value)
            if "status" in changes and "category" not in changes:
                issue.category = {v.lower(): k for k, v in CATEGORIES.items()}.get(
                    str(changes["status"]).lower(), issue.category
                )
            issue.updated = self._tick()
        status_change = (before, issue.status) if issue.status != before else None
        if send_webhook:
            self._send_webhook("jira:issue_updated", issue, status_change)
        return issue

    def webhook_body(self, event: str, issue: FakeIssue, status_change: tuple[str, str] | None) -> bytes:
        doc: dict[str, Any] = {
            "timestamp": int(issue.updated.timestamp() * 1000),
            "webhookEvent": event,
            "issue_event_type_name": "issue_created" if event == "jira:issue_created" else "issue_generic",
            "user": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Ana Admin"},
            "issue": self._issue_json(issue, None),
        }
        if status_change is not None:
            doc["changelog"] = {
                "id": str(next(self._ids)),
                "items": [
                    {
                        "field": "status",
                        "fieldId": "status",
                        "fromString": status_change[0],
                        "toString": status_change[1],
                    }
                ],
            }
        return json.dumps(doc, separators=(",", ":")).encode()

    def _send_webhook(self, event: str, issue: FakeIssue, status_change: tuple[str, str] | None) -> None:
        with self.lock:
            url, secret = self.webhook_url, self.webhook_secret
            body = self.webhook_body(event, issue, status_change)
            version = jira_time(issue.updated)
        if url is None:
            return
        identifier = str(uuid.uuid4())
        for attempt in range(self.webhook_retries + 1):
            status = self._webhook_attempt(url, secret, body, identifier, attempt)
            with self.lock:
                self.webhook_attempts.append(
                    WebhookAttempt(identifier, event, issue.key, attempt, status, version)
                )
            if status and status not in RETRIED_STATUSES and status < 500:
                return

    def _webhook_attempt(
        self, url: str, secret: str | None, body: bytes, identifier: str, attempt: int
    ) -> int:
        decision = self.webhook_faults.decide("POST", "/webhook")
        if decision.action == DROP:
            return 0
        if decision.action == "status" and decision.status is not None:
            return decision.status
        headers = {
            "Content-Type": "application/json; charset=UTF-8",
            "X-Atlassian-Webhook-Identifier": identifier,
            "X-Atlassian-Webhook-Flow": "Primary",
        }
        if attempt:
            headers["X-Atlassian-Webhook-Retry"] = str(attempt)
        if secret:
            headers["X-Hub-Signature"] = sign(secret, body)
        try:
            response = requests.post(url, data=body, headers=headers, timeout=10)
        except requests.RequestException:
            return 0
        return 0 if decision.action == DROP_AFTER else response.status_code

    def delivered(self) -> list[WebhookAttempt]:
        """Webhook attempts the receiver answered 2xx."""
        with self.lock:
            return [a for a in self.webhook_attempts if 200 <= a.status < 300]

    # ------------------------------------------------------------------ the REST API

    def fault_answer(self, status: int, retry_after: str | None) -> Answer:
        answer = super().fault_answer(status, retry_after)
        return Answer(status, {"errorMessages": [answer.body["message"]], "errors": {}}, answer.headers)

    def _issue_json(self, issue: FakeIssue, wanted: Sequence[str] | None) -> dict[str, Any]:
        every = issue.fields()
        if wanted is None or "*all" in wanted or "*navigable" in wanted:
            fields = every
        else:
            fields = {name: every[name] for name in wanted if name in every}
        return {
            "id": issue.id,
            "key": issue.key,
            "self": f"{self.url}/rest/api/3/issue/{issue.id}",
            "fields": fields,
        }

    def api(self, request: ApiRequest) -> Answer:
        if request.headers.get("authorization", "") != self.auth_header:
            return Answer(
                401,
                {"errorMessages": ["Client must be authenticated to access this resource."], "errors": {}},
            )
        if (request.method, request.path) == ("POST", "/rest/api/3/search/jql"):
            return self._search(request)
        if (request.method, request.path) == ("GET", "/rest/api/3/field"):
            fields = [{"id": i, "name": n, "custom": False, "navigable": True} for i, n in _STANDARD_FIELDS]
            fields.append({"id": FLAGGED_FIELD, "name": "Flagged", "custom": True, "navigable": True})
            return Answer(200, fields)
        return Answer(404, {"errorMessages": ["Not Found"], "errors": {}})

    def _search(self, request: ApiRequest) -> Answer:
        try:
            body = request.json()
        except ValueError:
            return Answer(400, {"errorMessages": ["Invalid request payload."], "errors": {}})
        if not isinstance(body, dict) or not isinstance(body.get("jql"), str):
            return Answer(400, {"errorMessages": ["Invalid request payload: jql is required."], "errors": {}})
        wanted = body.get("fields")
        if wanted is not None and (
            not isinstance(wanted, list) or not all(isinstance(f, str) for f in wanted)
        ):
            return Answer(
                400, {"errorMessages": ["Invalid request payload: fields must be strings."], "errors": {}}
            )
        try:
            page_size = int(body.get("maxResults", 50))
        except (TypeError, ValueError):
            return Answer(400, {"errorMessages": ["maxResults must be a number."], "errors": {}})
        page_size = min(max(page_size, 1), 100)
        token = body.get("nextPageToken")
        offset = 0
        if token is not None:
            try:
                offset = int(base64.urlsafe_b64decode(str(token).encode()).decode().removeprefix("offset:"))
            except (ValueError, UnicodeDecodeError):
                return Answer(400, {"errorMessages": ["The nextPageToken is invalid."], "errors": {}})
        try:
            query = parse_jql(body["jql"], self.clock().astimezone(dt.UTC))
        except JqlError as exc:
            return Answer(400, {"errorMessages": [str(exc)], "errors": {}})
        with self.lock:
            found = sorted(
                (i for i in self.issues.values() if query.match(i)), key=query.order, reverse=query.descending
            )
            page = found[offset : offset + page_size]
            issues = [self._issue_json(i, wanted or []) for i in page]
        doc: dict[str, Any] = {"issues": issues}
        if offset + page_size < len(found):
            doc["nextPageToken"] = base64.urlsafe_b64encode(f"offset:{offset + page_size}".encode()).decode()
            doc["isLast"] = False
        else:
            doc["isLast"] = True
        return Answer(200, doc)

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {
                "ok": True,
                "url": self.url,
                "issues": len(self.issues),
                "webhook": self.webhook_url is not None,
            }
