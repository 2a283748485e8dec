"""The Jira Cloud REST calls reconciliation needs: the enhanced JQL search and the field list.

- ``POST /rest/api/3/search/jql`` with ``{"jql", "fields", "maxResults", "nextPageToken"}``: the current search
  endpoint (the old ``/rest/api/3/search`` with ``startAt`` is removed from Jira Cloud). Each answer holds
  ``issues`` and, while more pages follow, ``nextPageToken`` (``isLast`` true on the last page).
- ``GET /rest/api/3/field``: the site's fields, to find the id of the "Flagged" custom field (it differs per
  site), so a reconciled report is coloured like one from a webhook.

Authentication is Basic with an Atlassian account's e-mail and an API token. The account needs only "Browse
projects" on the routed projects (docs/recovery.md). Retries: urllib3's ``Retry`` on the session repeats 429
and 5xx answers and connection errors (the search is a read, so its POST is safe to repeat), honouring
``Retry-After`` up to ``retry_after_cap`` seconds. The token never appears in a repr or an error.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

SEARCH_PATH: Final = "/rest/api/3/search/jql"
FIELDS_PATH: Final = "/rest/api/3/field"
MAX_PAGE: Final = 100


class JiraApiError(Exception):
    """Jira refused or failed a call (``status`` None: no answer). The message never holds the token."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _CappedRetry(Retry):
    """urllib3's Retry, with a server's Retry-After capped (a Lambda must not sleep past its timeout)."""

    retry_after_cap: float = 20.0

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, self.retry_after_cap)


def retry_policy(total: int = 4, backoff_factor: float = 0.5) -> Retry:
    """The session's retry policy (tests pass ``backoff_factor=0``)."""
    return _CappedRetry(
        total=total,
        connect=total,
        read=total,
        status=total,
        backoff_factor=backoff_factor,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "POST"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )


class JiraClient:
    """Jira Cloud REST for one account. ``base_url`` is the site, e.g. ``https://acme.atlassian.net``."""

    def __init__(
        self,
        base_url: str,
        email: str,
        api_token: str,
        *,
        session: requests.Session | None = None,
        retry: Retry | None = None,
        timeout: tuple[float, float] = (3.05, 20.0),
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError(f"the Jira site URL must be http(s)://host; got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        credentials = base64.b64encode(f"{email}:{api_token}".encode()).decode("ascii")
        self._auth = f"Basic {credentials}"
        self.timeout = timeout
        self._session = session if session is not None else requests.Session()
        adapter = HTTPAdapter(max_retries=retry if retry is not None else retry_policy())
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self.requests_sent = 0

    def __repr__(self) -> str:  # never shows the credentials
        return f"JiraClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def search(
        self, jql: str, fields: Sequence[str], *, page_size: int = MAX_PAGE
    ) -> Iterator[list[dict[str, Any]]]:
        """The issues ``jql`` finds, page by page, each with ``fields``. Raises JiraApiError."""
        token: str | None = None
        seen_tokens: set[str] = set()
        while True:
            body: dict[str, Any] = {
                "jql": jql,
                "fields": list(fields),
                "maxResults": min(page_size, MAX_PAGE),
            }
            if token is not None:
                body["nextPageToken"] = token
            doc = self._call("POST", SEARCH_PATH, json_body=body)
            if not isinstance(doc, dict) or not isinstance(doc.get("issues", []), list):
                raise JiraApiError("search: the answer holds no issues list", status=200)
            yield [i for i in doc.get("issues", []) if isinstance(i, dict)]
            token = doc.get("nextPageToken") if isinstance(doc.get("nextPageToken"), str) else None
            if doc.get("isLast") is True or not token:
                return
            if token in seen_tokens:  # a server bug must not loop a Lambda until its timeout
                raise JiraApiError("search: the same nextPageToken came back twice", status=200)
            seen_tokens.add(token)

    def field_ids(self, name: str) -> list[str]:
        """Ids of the fields called ``name`` (case-insensitive), e.g. ["customfield_10021"] for "Flagged"."""
        doc = self._call("GET", FIELDS_PATH)
        if not isinstance(doc, list):
            raise JiraApiError("field: the answer is not a list", status=200)
        wanted = name.casefold()
        return [
            str(f["id"])
            for f in doc
            if isinstance(f, dict)
            and isinstance(f.get("id"), str)
            and str(f.get("name", "")).casefold() == wanted
        ]

    def _call(self, method: str, path: str, *, json_body: Any = None) -> Any:
        try:
            self.requests_sent += 1
            response = self._session.request(
                method,
                self.base_url + path,
                json=json_body,
                headers={"Authorization": self._auth, "Accept": "application/json"},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise JiraApiError(f"{method} {path}: no answer from Jira ({type(exc).__name__})") from None
        if response.status_code == 401:
            raise JiraApiError(f"{method} {path}: 401, the e-mail / API token pair was refused", status=401)
        if response.status_code == 403:
            raise JiraApiError(f"{method} {path}: 403, the account may not do this", status=403)
        if not 200 <= response.status_code < 300:
            raise JiraApiError(
                f"{method} {path}: Jira answered {response.status_code} ({_messages(response)})",
                status=response.status_code,
            )
        try:
            return response.json()
        except ValueError:
            raise JiraApiError(
                f"{method} {path}: the answer is not JSON", status=response.status_code
            ) from None


def _messages(response: requests.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return response.reason or "no detail"
    if isinstance(doc, dict):
        parts = [str(m) for m in doc.get("errorMessages") or [] if isinstance(m, str)]
        errors = doc.get("errors")
        if isinstance(errors, dict):
            parts += [f"{k}: {v}" for k, v in errors.items()]
        if parts:
            return "; ".join(parts)[:300]
    return response.reason or "no detail"
