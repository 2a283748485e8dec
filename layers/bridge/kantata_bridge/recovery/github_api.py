"""The GitHub REST calls recovery needs: list a hook's deliveries, redeliver one.

- ``GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries`` and ``GET /orgs/{org}/hooks/{hook_id}/deliveries``:
  newest first, at most 100 per page, cursor pagination through the ``Link`` header (``rel="next"``).
- ``POST …/deliveries/{delivery_id}/attempts``: GitHub sends the delivery again (same ``X-GitHub-Delivery``
  guid, body and signature; a new delivery id with ``redelivery: true``) and answers 202.

A fine-grained personal access token needs the "Webhooks" permission of the repository (repository hooks) or
of the organization (organization hooks): read to list, write to redeliver. GitHub App hooks
(``/app/hook/deliveries``) need a JWT signed with the App's private key instead (docs/recovery.md).

Rate limits, as GitHub's REST documentation asks ("Best practices for using the REST API" / "Rate limits for
the REST API"): a 403 or 429 that is a rate limit waits ``retry-after`` seconds when the header is there, else
until ``x-ratelimit-reset`` when ``x-ratelimit-remaining`` is 0, else at least a minute (a secondary limit),
doubling on repeats; a success with ``x-ratelimit-remaining: 0`` makes the next request wait for the reset;
writes (the redelivery POST) are spaced at least ``min_write_interval`` (1 s) apart. A wait longer than
``max_wait`` is not slept through: ``GitHubRateLimitedError`` says how long, and the run stops there (its
checkpoint keeps what is left for the next run). Written by hand because urllib3's ``Retry`` knows
``Retry-After`` but not GitHub's reset header, its 403 rate limits or the write spacing.

The token is sent in ``Authorization`` only to ``api_url``'s own origin (a ``Link`` to another host is
refused) and never appears in a repr, log line or error message.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import requests

DEFAULT_API_URL: Final = "https://api.github.com"
API_VERSION: Final = "2022-11-28"
MAX_PER_PAGE: Final = 100
# GitHub asks for at least a second between writes ("Best practices for using the REST API"); tests lower it.
MIN_WRITE_INTERVAL = 1.0
_HOOK_PATH: Final = re.compile(
    r"^(?:repos/(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/(?P<repo>[A-Za-z0-9._-]{1,100})"
    r"|orgs/(?P<org>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})))/hooks/(?P<hook_id>[1-9][0-9]{0,18})$"
)


class GitHubApiError(Exception):
    """GitHub refused or failed a call. ``status`` is the HTTP status (None: no answer). ``retryable``: a later
    run may succeed. ``ambiguous``: a write may have happened although it failed (a timeout, a lost answer)."""

    def __init__(
        self, message: str, *, status: int | None = None, retryable: bool = False, ambiguous: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.ambiguous = ambiguous


class GitHubRateLimitedError(GitHubApiError):
    """A rate limit asks for a longer wait than this run may spend (``wait_seconds``)."""

    def __init__(self, message: str, *, status: int | None, wait_seconds: float) -> None:
        super().__init__(message, status=status, retryable=True)
        self.wait_seconds = wait_seconds


@dataclass(frozen=True, slots=True)
class HookRef:
    """A repository hook (``repos/<owner>/<repo>/hooks/<id>``) or an organization hook
    (``orgs/<org>/hooks/<id>``): the same text as the API path, so it cannot be misread."""

    owner: str
    hook_id: int
    repo: str | None = None

    @property
    def path(self) -> str:
        if self.repo is None:
            return f"orgs/{self.owner}/hooks/{self.hook_id}"
        return f"repos/{self.owner}/{self.repo}/hooks/{self.hook_id}"

    @property
    def kind(self) -> str:
        return "organization" if self.repo is None else "repository"

    def __str__(self) -> str:
        return self.path

    @classmethod
    def parse(cls, text: str) -> HookRef:
        """``repos/acme/webapp/hooks/123`` or ``orgs/acme/hooks/456`` (surrounding slashes and spaces allowed).

        Raises ValueError naming the expected forms.
        """
        cleaned = text.strip().strip("/")
        match = _HOOK_PATH.match(cleaned)
        if match is None:
            raise ValueError(
                f"{text.strip()!r} is not a hook: use repos/<owner>/<repo>/hooks/<id> or orgs/<org>/hooks/<id>"
            )
        if match["org"]:
            return cls(owner=match["org"], hook_id=int(match["hook_id"]))
        return cls(owner=match["owner"], repo=match["repo"], hook_id=int(match["hook_id"]))


@dataclass(frozen=True, slots=True)
class HookDelivery:
    """One delivery attempt as the deliveries list shows it (request and response bodies are not listed)."""

    id: int
    guid: str
    delivered_at: dt.datetime
    status: str
    status_code: int
    event: str
    action: str | None = None
    redelivery: bool = False

    @property
    def ok(self) -> bool:
        """GitHub counts the attempt as delivered (``status`` "OK"; a 2xx answer)."""
        return self.status == "OK" or 200 <= self.status_code < 300

    @classmethod
    def from_json(cls, doc: Any) -> HookDelivery:
        """Parse one item of the list. Raises ValueError naming the field that is missing or wrong."""
        if not isinstance(doc, dict):
            raise ValueError("a delivery is not a JSON object")
        delivery_id = doc.get("id")
        if isinstance(delivery_id, bool) or not isinstance(delivery_id, int):
            raise ValueError("delivery.id: missing or not a number")
        guid = doc.get("guid")
        if not isinstance(guid, str) or not guid:
            raise ValueError(f"delivery {delivery_id}: guid missing")
        raw_at = doc.get("delivered_at")
        try:
            delivered_at = dt.datetime.fromisoformat(str(raw_at).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"delivery {delivery_id}: delivered_at is not a timestamp") from None
        if delivered_at.tzinfo is None:
            delivered_at = delivered_at.replace(tzinfo=dt.UTC)
        code = doc.get("status_code")
        action = doc.get("action")
        return cls(
            id=delivery_id,
            guid=guid,
            delivered_at=delivered_at.astimezone(dt.UTC),
            status=str(doc.get("status") or ""),
            status_code=code if isinstance(code, int) and not isinstance(code, bool) else 0,
            event=str(doc.get("event") or ""),
            action=action if isinstance(action, str) else None,
            redelivery=bool(doc.get("redelivery")),
        )


class GitHubClient:
    """GitHub REST for one token. ``sleep`` and ``clock`` (epoch seconds) are injectable for tests."""

    def __init__(
        self,
        token: str,
        api_url: str = DEFAULT_API_URL,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 15.0),
        max_wait: float = 60.0,
        min_write_interval: float | None = None,
        max_rate_limit_waits: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(api_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError(f"the GitHub API URL must be http(s)://host[/path]; got {api_url!r}")
        if not token or not token.isascii() or not token.isprintable() or " " in token:
            # It goes into an HTTP header: anything else fails deep in http.client (the value is not shown).
            raise ValueError("the GitHub token must be visible ASCII characters (no spaces)")
        self._token = token
        self.api_url = api_url.rstrip("/")
        self._origin = (parts.scheme, parts.netloc)
        self._session = session if session is not None else requests.Session()
        self.timeout = timeout
        self.max_wait = max_wait
        self.min_write_interval = MIN_WRITE_INTERVAL if min_write_interval is None else min_write_interval
        self.max_rate_limit_waits = max_rate_limit_waits
        self._sleep = sleep
        self._clock = clock
        self._not_before = 0.0  # epoch seconds before which no request may be sent (a known rate-limit reset)
        self._last_write = 0.0
        self.requests_sent = 0
        self.waited_seconds = 0.0

    def __repr__(self) -> str:  # never shows the token
        return f"GitHubClient(api_url={self.api_url!r})"

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------------ calls

    def list_deliveries(self, hook: HookRef, *, per_page: int = MAX_PER_PAGE) -> Iterator[list[HookDelivery]]:
        """The hook's deliveries page by page, newest first. Raises GitHubApiError (GitHubRateLimitedError)."""
        url: str | None = f"{self.api_url}/{hook.path}/deliveries"
        params: dict[str, Any] | None = {"per_page": min(max(1, per_page), MAX_PER_PAGE)}
        while url is not None:
            response = self._request("GET", url, params=params)
            try:
                items = response.json()
            except ValueError:
                raise GitHubApiError(
                    f"{hook}: the deliveries list is not JSON", status=response.status_code, retryable=True
                ) from None
            if not isinstance(items, list):
                raise GitHubApiError(f"{hook}: the deliveries list is not a JSON array", status=200)
            try:
                yield [HookDelivery.from_json(item) for item in items]
            except ValueError as exc:
                raise GitHubApiError(f"{hook}: {exc}", status=200) from None
            url = self._next_link(response)
            params = None  # the next link carries per_page and the cursor

    def redeliver(self, hook: HookRef, delivery_id: int) -> None:
        """Ask GitHub to send delivery ``delivery_id`` again (202). Raises GitHubApiError: ``ambiguous`` when
        GitHub may have taken it although the call failed (a timeout, a lost answer, a 502/504)."""
        url = f"{self.api_url}/{hook.path}/deliveries/{int(delivery_id)}/attempts"
        self._request("POST", url, params=None)

    # ------------------------------------------------------------------ plumbing

    def _headers(self) -> dict[str, str]:
        return {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self._token}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "kantata-bridge-recovery",
        }

    def _next_link(self, response: requests.Response) -> str | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        parts = urlsplit(link)
        if (parts.scheme, parts.netloc) != self._origin:
            # The token must never go to another host, whatever a response says.
            raise GitHubApiError(f"refusing a next-page link to another host ({parts.netloc})", status=200)
        return str(link)

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.waited_seconds += seconds
            self._sleep(seconds)

    def _request(self, method: str, url: str, *, params: dict[str, Any] | None) -> requests.Response:
        write = method != "GET"
        limited = 0
        transport_failures = 0
        while True:
            now = self._clock()
            pause = self._not_before - now
            if write:
                pause = max(pause, self._last_write + self.min_write_interval - now)
            if pause > self.max_wait:
                raise GitHubRateLimitedError(
                    f"GitHub rate limit: next request allowed in {pause:.0f} s",
                    status=None,
                    wait_seconds=pause,
                )
            self._wait(pause)
            try:
                self.requests_sent += 1
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    headers=self._headers(),
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                if not write and transport_failures < 2:
                    transport_failures += 1
                    self._wait(0.5 * 2**transport_failures)
                    continue
                # A POST that got no answer may have been taken: never repeat it here.
                raise GitHubApiError(
                    f"{method} {self._path(url)}: no answer from GitHub ({type(exc).__name__})",
                    retryable=True,
                    ambiguous=write,
                ) from None
            finally:
                if write:
                    self._last_write = self._clock()
            self._note_limits(response)
            if 200 <= response.status_code < 300:
                return response
            wait = self._rate_limit_wait(response, limited)
            if wait is not None:
                limited += 1
                if wait > self.max_wait or limited > self.max_rate_limit_waits:
                    raise GitHubRateLimitedError(
                        f"{method} {self._path(url)}: GitHub rate limit ({response.status_code}); "
                        f"retry in {wait:.0f} s",
                        status=response.status_code,
                        wait_seconds=wait,
                    )
                self._wait(wait)
                continue
            if response.status_code >= 500 and not write and transport_failures < 2:
                transport_failures += 1
                self._wait(0.5 * 2**transport_failures)
                continue
            raise self._error(method, url, response)

    def _note_limits(self, response: requests.Response) -> None:
        remaining = _header_int(response, "x-ratelimit-remaining")
        reset = _header_int(response, "x-ratelimit-reset")
        if remaining == 0 and reset is not None:
            self._not_before = max(self._not_before, float(reset))

    def _rate_limit_wait(self, response: requests.Response, repeats: int) -> float | None:
        """Seconds to wait before repeating a rate-limited request, or None when it was not a rate limit."""
        status = response.status_code
        if status not in (403, 429):
            return None
        retry_after = _header_int(response, "retry-after")
        remaining = _header_int(response, "x-ratelimit-remaining")
        reset = _header_int(response, "x-ratelimit-reset")
        if retry_after is not None:
            return float(max(retry_after, 0))
        if remaining == 0 and reset is not None:
            return max(float(reset) - self._clock(), 0.0) + 1.0
        message = _message(response).lower()
        if status == 429 or "rate limit" in message:
            return float(60 * 2**repeats)  # a secondary limit without headers: at least a minute, then longer
        return None  # a plain 403: a permission problem, not a limit

    def _error(self, method: str, url: str, response: requests.Response) -> GitHubApiError:
        status = response.status_code
        path = self._path(url)
        detail = _message(response)[:200]
        if status == 401:
            return GitHubApiError(f"{method} {path}: 401, the token was refused ({detail})", status=status)
        if status in (403, 404):
            # GitHub answers 404 (not 403) for a hook the token may not see.
            return GitHubApiError(
                f"{method} {path}: {status}, the hook does not exist or the token lacks the Webhooks "
                f"permission ({detail})",
                status=status,
            )
        if status >= 500:
            return GitHubApiError(
                f"{method} {path}: GitHub answered {status}",
                status=status,
                retryable=True,
                ambiguous=method != "GET" and status in (502, 504),
            )
        return GitHubApiError(f"{method} {path}: GitHub answered {status} ({detail})", status=status)

    def _path(self, url: str) -> str:
        return urlsplit(url).path


def _header_int(response: requests.Response, name: str) -> int | None:
    raw = response.headers.get(name)
    if raw is None:
        return None
    try:
        return int(float(raw.strip()))
    except ValueError:
        return None


def _message(response: requests.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return response.reason or ""
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return str(doc["message"])
    return response.reason or ""
