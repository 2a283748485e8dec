"""HTTP client for the Kantata OX API (formerly Mavenlink): the endpoints the bridge uses (CONTRACT.md §6).

One reusable ``requests.Session``; ``Authorization: Bearer <token>`` on every request; connect/read timeouts;
write bodies wrapped in the singular key; responses decoded by walking ``results`` (the ordered primary hits)
with the side-loaded maps reachable through ``Included``; lazy pagination that stops on ``meta``; typed errors
from ``errors.error_from_response``; values checked against Kantata's enumerations before anything is sent.

Repeating requests (see ``retry.py``): GET, PUT, DELETE and ``POST /external_references/create_or_update``
(an upsert) are repeated with backoff on 429, 5xx, connection errors and timeouts. Plain POST creates (status
reports, stories, task status sets, custom task statuses) are sent **once**: Kantata has no idempotency key, and a
create that timed out or got a 503 may still have been made, so repeating it in-process could post a report
twice. The error is raised with ``retryable=True`` and the caller decides: the worker lets SQS redeliver and its
dedupe (external reference lookup + idempotency record) finds a report that was made after all.

The token never appears in a message, a log line or a repr.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import TracebackType
from typing import Any, Final

import requests

from kantata_bridge.kantata import DEFAULT_BASE_URL
from kantata_bridge.kantata.errors import (
    KantataConnectionError,
    KantataError,
    KantataTimeoutError,
    KantataValueError,
    MalformedResponseError,
    NotFoundError,
    error_from_response,
)
from kantata_bridge.kantata.models import (
    EXTERNAL_REFERENCE_STATUSES,
    EXTERNAL_REFERENCE_SUBJECT_TYPES,
    STATUS_CATEGORIES,
    CustomTaskStatus,
    ExternalReference,
    ExternalReferenceUpsert,
    Included,
    NewStory,
    StatusCategory,
    StatusReport,
    Story,
    StoryExternalReference,
    StoryPriority,
    StoryType,
    StoryUpdate,
    TaskStatusSet,
    Workspace,
    WorkspaceTaskStatusSet,
    check_enum,
    check_required,
)
from kantata_bridge.kantata.retry import RetryPolicy, call_with_retry

__all__ = ["DEFAULT_BASE_URL", "MAX_PER_PAGE", "KantataClient", "Page", "RetryPolicy", "decode_envelope"]

MAX_PER_PAGE: Final = 200  # Kantata's documented maximum for per_page (CONTRACT §3)
MAX_REFS_PER_FILTER: Final = 200  # external_reference_service_model_refs takes up to 200 ids (CONTRACT §6.1)
_STATUS_REPORT_INCLUDE: Final = ("external_references", "workspace")
# Stories are read with their workspace (whose task_statuses say which names the task can take), their
# tracker links, and the id of their custom status.
STORY_INCLUDE: Final = ("external_references", "workspace")
STORY_OPTIONAL_FIELDS: Final = ("custom_task_status_id",)
_DIGITS = re.compile(r"[0-9]+")
# RFC 7230 token68-ish: what can go in a header value without requests refusing it. requests' InvalidHeader
# message quotes the whole header value, so a bad token is refused here first, without echoing it.
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")

OnRequest = Callable[[str, str, Any], None]
# Builds a model from one primary object and the envelope's maps (a model's ``from_api``).
type Build[T] = Callable[[Mapping[str, Any], Included], T]


@dataclass(frozen=True, slots=True)
class Page:
    """One decoded response envelope: the primary objects in ``results`` order, the maps, the paging info."""

    objects: tuple[Mapping[str, Any], ...]
    included: Included
    count: int | None
    page_count: int | None
    page_size: int | None


def _int_field(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    return None


def decode_envelope(payload: Any, key: str, *, method: str = "GET", path: str = "") -> Page:
    """Decode a Kantata response envelope, walking ``results`` (not the maps, which are unordered).

    Only results whose ``key`` is ``key`` are primary objects; any others are skipped. Raises
    MalformedResponseError when the payload is not an object, ``results`` is not a list, or a result points
    at an object the maps do not hold.
    """
    where = f"Kantata {method} {path}"
    if not isinstance(payload, Mapping):
        raise MalformedResponseError(
            f"{where} returned a body that is not a JSON object", method=method, path=path
        )
    results = payload.get("results", [])
    if not isinstance(results, list):
        raise MalformedResponseError(
            f"{where} returned 'results' that is not a list", method=method, path=path
        )
    included = Included(payload)
    objects: list[Mapping[str, Any]] = []
    for entry in results:
        if not isinstance(entry, Mapping) or entry.get("key") != key:
            continue
        obj = included.get(key, str(entry.get("id")))
        if obj is None:
            raise MalformedResponseError(
                f"{where}: result {key}/{entry.get('id')} is missing from the '{key}' map",
                method=method,
                path=path,
            )
        objects.append(obj)
    meta = payload.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    count = _int_field(meta.get("count"))
    if count is None:
        count = _int_field(payload.get("count"))
    return Page(
        objects=tuple(objects),
        included=included,
        count=count,
        page_count=_int_field(meta.get("page_count")),
        page_size=_int_field(meta.get("page_size")),
    )


def _path_id(name: str, value: str | int) -> str:
    """An id for a URL path: Kantata types path ids as integers, and anything else could change the path."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _DIGITS.fullmatch(text):
        raise KantataValueError(f"{name} must be a numeric Kantata id; got {value!r}")
    return text


def _check_per_page(per_page: int) -> int:
    if isinstance(per_page, bool) or not isinstance(per_page, int) or not 1 <= per_page <= MAX_PER_PAGE:
        raise KantataValueError(f"per_page must be an integer from 1 to {MAX_PER_PAGE}; got {per_page!r}")
    return per_page


def _refs_param(name: str, refs: Sequence[str]) -> str:
    if isinstance(refs, str):
        raise KantataValueError(f"{name} must be a sequence of strings, not a single string")
    if not refs:
        # An empty filter would match everything once left out; refuse rather than guess.
        raise KantataValueError(f"{name} must not be empty")
    if len(refs) > MAX_REFS_PER_FILTER:
        raise KantataValueError(f"{name} takes at most {MAX_REFS_PER_FILTER} refs; got {len(refs)}")
    for ref in refs:
        check_required(name + "[]", ref)
        if "," in ref:
            raise KantataValueError(
                f"{name}[] must not contain a comma (the list is comma separated); got {ref!r}"
            )
    return ",".join(refs)


def _include_param(include: Sequence[str], name: str = "include") -> str | None:
    if isinstance(include, str):
        raise KantataValueError(f"{name} must be a sequence of names, not a single string")
    return ",".join(include) if include else None


def _story_params(include: Sequence[str], optional_fields: Sequence[str]) -> dict[str, Any]:
    return _drop_none(
        {
            "include": _include_param(include),
            "optional_fields": _include_param(optional_fields, "optional_fields"),
        }
    )


def _names_param(name: str, values: Sequence[str | int], check: Callable[[str, Any], str]) -> str:
    """A non-empty comma list (``only``, ``by_status``): an empty one would match nothing or everything."""
    if isinstance(values, str):
        raise KantataValueError(f"{name} must be a sequence, not a single string")
    if not values:
        raise KantataValueError(f"{name} must not be empty")
    items = [check(name + "[]", v) for v in values]
    for item in items:
        if "," in item:
            raise KantataValueError(
                f"{name}[] must not contain a comma (the list is comma separated); got {item!r}"
            )
    return ",".join(items)


def _drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _transport_error(exc: requests.RequestException, method: str, path: str) -> KantataError:
    """The typed error for a request that got no HTTP answer. Messages name only the method, the path and
    the exception type: requests' own messages quote the URL, and the exception holds the request headers."""
    kind = type(exc).__name__
    if isinstance(exc, requests.Timeout):  # ConnectTimeout and ReadTimeout
        return KantataTimeoutError(f"Kantata {method} {path} timed out ({kind})", method=method, path=path)
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return KantataConnectionError(
            f"Kantata {method} {path} failed: connection error ({kind})", method=method, path=path
        )
    return KantataError(f"Kantata {method} {path} could not be sent ({kind})", method=method, path=path)


def _built[T](build: Build[T], obj: Mapping[str, Any], included: Included, method: str, path: str) -> T:
    """``build(obj, included)`` (a model's ``from_api``). An object without the documented fields or types
    is raised as MalformedResponseError, not as the KeyError/ValueError/… it would give, so every failure the
    caller sees is a KantataError."""
    try:
        return build(obj, included)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        failure = MalformedResponseError(
            f"Kantata {method} {path} returned an object the client cannot read ({type(exc).__name__}: {exc})",
            method=method,
            path=path,
        )
    raise failure


class KantataClient:
    """Kantata OX API client. Build one per process and reuse it (it keeps a connection pool).

    ``retry`` applies only to requests that are safe to repeat (see the module docstring); pass
    ``RetryPolicy.never()`` to switch retries off. ``session``: a session you own (it is not closed by
    ``close()``); by default the client makes and owns one. ``on_request(method, path, json_body)`` is
    called before each send, retries included (for contract tests). Errors: every method raises a
    ``KantataError`` subclass (``KantataValueError`` before sending for a value Kantata would refuse).
    """

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        user_agent: str = "kantata-bridge/0.1",
        on_request: OnRequest | None = None,
    ) -> None:
        if not isinstance(token, str) or not _TOKEN_CHARS.fullmatch(token):
            raise KantataValueError("token must be a non-empty string of visible ASCII characters")
        if not isinstance(base_url, str) or not base_url.startswith(("https://", "http://")):
            raise KantataValueError(f"base_url must be an http(s) URL; got {base_url!r}")
        if connect_timeout <= 0 or read_timeout <= 0:
            raise KantataValueError("connect_timeout and read_timeout must be positive")
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.retry = retry if retry is not None else RetryPolicy()
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._user_agent = user_agent
        self._on_request = on_request

    def __repr__(self) -> str:
        return f"KantataClient(base_url={self.base_url!r}, token='***')"

    def close(self) -> None:
        """Close the session if the client made it (a session passed in is left to its owner)."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> KantataClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _send(
        self, method: str, path: str, params: Mapping[str, Any] | None, body: Any
    ) -> Mapping[str, Any] | None:
        """One HTTP exchange. Returns the decoded JSON object, or None for an empty (204) body."""
        if self._on_request is not None:
            self._on_request(method, path, body)
        headers = {
            # Per request rather than on the session, so a session passed in never holds the token.
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "User-Agent": self._user_agent,
        }
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                params=params,
                json=body,
                headers=headers,
                timeout=self.timeout,
                # Kantata does not redirect API calls; following one could resend the token elsewhere.
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            failure = _transport_error(exc, method, path)
        else:
            with response:
                return self._decode(method, path, response)
        # Raised here, outside the except block, so neither __cause__ nor __context__ holds requests'
        # exception: it carries the PreparedRequest, whose headers hold the bearer token.
        raise failure

    @staticmethod
    def _decode(method: str, path: str, response: requests.Response) -> Mapping[str, Any] | None:
        text = response.text
        payload: Any = None
        if text.strip():
            try:
                payload = response.json()
            except ValueError:
                payload = None
        if not 200 <= response.status_code < 300:
            # A non-JSON error body (a proxy's HTML 502 page, say) still maps by status code.
            raise error_from_response(
                response.status_code, payload, method=method, path=path, headers=response.headers, body=text
            )
        if not text.strip():
            return None
        if not isinstance(payload, Mapping):
            raise MalformedResponseError(
                f"Kantata {method} {path} returned {response.status_code} with a body that is not a JSON object",
                status=response.status_code,
                method=method,
                path=path,
                body=text,
            )
        return payload

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        repeatable: bool,
    ) -> Mapping[str, Any] | None:
        if not repeatable:
            # A plain create: sent once (see the module docstring). Its retryable errors reach the caller.
            return self._send(method, path, params, body)
        return call_with_retry(
            lambda: self._send(method, path, params, body), self.retry, on_retry=self._log_retry
        )

    @staticmethod
    def _log_retry(error: KantataError, attempt: int, delay: float) -> None:
        from kantata_bridge.observability import (
            logger,
        )  # lazy: the client is usable without Powertools set up

        logger.warning(
            "Kantata call failed; retrying",
            extra={
                "kantata_method": error.method,
                "kantata_path": error.path,
                "kantata_status": error.status,
                "error_type": type(error).__name__,
                "attempt": attempt,
                "retry_delay_s": round(delay, 3),
            },
        )

    def _one[T](
        self,
        method: str,
        path: str,
        key: str,
        build: Build[T],
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        repeatable: bool,
    ) -> T:
        """A request whose envelope holds exactly one primary object of ``key``, built into a model."""
        payload = self._request(method, path, params=params, body=body, repeatable=repeatable)
        page = decode_envelope(payload, key, method=method, path=path)
        if len(page.objects) != 1:
            raise MalformedResponseError(
                f"Kantata {method} {path} returned {len(page.objects)} '{key}' results where one was expected",
                method=method,
                path=path,
            )
        return _built(build, page.objects[0], page.included, method, path)

    def _models[T](
        self,
        path: str,
        key: str,
        build: Build[T],
        params: Mapping[str, Any] | None = None,
        per_page: int = MAX_PER_PAGE,
    ) -> Iterator[T]:
        """``paginate`` with each object built into a model."""
        pages = self.paginate(path, key, params, per_page=per_page)
        return (_built(build, obj, inc, "GET", path) for obj, inc in pages)

    def _delete(self, path: str) -> None:
        """DELETE, repeated like a PUT. A 404 on a repeat is success: the earlier send whose answer was lost
        (dropped connection, timeout, 5xx from a proxy) may have deleted it, and gone is what was asked."""
        sends = 0

        def send() -> None:
            nonlocal sends
            sends += 1
            try:
                self._send("DELETE", path, None, None)
            except NotFoundError:
                if sends == 1:
                    raise

        call_with_retry(send, self.retry, on_retry=self._log_retry)

    # ------------------------------------------------------------------ pagination

    def paginate(
        self,
        path: str,
        key: str,
        params: Mapping[str, Any] | None = None,
        *,
        per_page: int = MAX_PER_PAGE,
    ) -> Iterator[tuple[Mapping[str, Any], Included]]:
        """Yield ``(object, included)`` for every primary object of ``key`` across pages, in ``results`` order.

        Lazy: a page is fetched only when the previous one is used up. Stops after ``meta.page_count`` pages
        (or the page that ``count`` says is last), never asking for a page past the last; without paging info
        it stops on a short or empty page. ``per_page`` (1..200) is checked now, before anything is sent;
        request errors surface while iterating.
        """
        _check_per_page(per_page)
        if not path.startswith("/"):
            raise KantataValueError(f"path must start with '/'; got {path!r}")
        return self._pages(path, key, dict(params or {}), per_page)

    def _pages(
        self, path: str, key: str, params: dict[str, Any], per_page: int
    ) -> Iterator[tuple[Mapping[str, Any], Included]]:
        page_number = 1
        while True:
            payload = self._request(
                "GET", path, params={**params, "page": page_number, "per_page": per_page}, repeatable=True
            )
            page = decode_envelope(payload, key, method="GET", path=path)
            for obj in page.objects:
                yield obj, page.included
            last = page.page_count
            if last is None and page.count is not None:
                last = math.ceil(page.count / (page.page_size or per_page))
            if last is not None:
                if page_number >= last:
                    return
            elif len(page.objects) < per_page:
                return
            if not page.objects:  # never loop on a server that keeps promising pages it does not fill
                return
            page_number += 1

    # ------------------------------------------------------------------ status reports

    def create_status_report(self, report: StatusReport) -> StatusReport:
        """Create a status report (``POST /status_reports``), returned with its external references and workspace.

        Sent once, never repeated in-process (see the module docstring): a 429/5xx/timeout is raised with
        ``retryable=True``. Raises KantataValueError (nothing sent) for a colour/category outside Kantata's lists
        or a missing workspace_id; ValidationError (422) with ``field_errors`` if Kantata refuses the values.
        """
        body = {"status_report": report.to_body()}
        return self._one(
            "POST",
            "/status_reports",
            "status_reports",
            StatusReport.from_api,
            params={"include": ",".join(_STATUS_REPORT_INCLUDE)},
            body=body,
            repeatable=False,
        )

    def list_status_reports(
        self,
        *,
        workspace_id: str | int | None = None,
        external_reference_service_name: str | None = None,
        external_reference_service_model: str | None = None,
        external_reference_service_model_ref: str | None = None,
        external_reference_service_model_refs: Sequence[str] | None = None,
        include: Sequence[str] = _STATUS_REPORT_INCLUDE,
        per_page: int = MAX_PER_PAGE,
    ) -> Iterator[StatusReport]:
        """Status reports matching the filters, lazily across pages.

        ``external_reference_service_model_ref`` is typed integer by Kantata (CONTRACT §8.1): a numeric ref is
        sent as that filter; a non-numeric one is sent as a one-item ``external_reference_service_model_refs``.
        Giving a non-numeric ref and ``..._refs`` together is refused (KantataValueError), as is an empty or
        >200-long refs list.
        """
        refs = self._model_refs(external_reference_service_model_ref, external_reference_service_model_refs)
        params = _drop_none(
            {
                "workspace_id": _path_id("workspace_id", workspace_id) if workspace_id is not None else None,
                "external_reference_service_name": external_reference_service_name,
                "external_reference_service_model": external_reference_service_model,
                **refs,
                "include": _include_param(include),
            }
        )
        return self._models(
            "/status_reports", "status_reports", StatusReport.from_api, params, per_page=per_page
        )

    @staticmethod
    def _model_refs(ref: str | None, refs: Sequence[str] | None) -> dict[str, str]:
        out: dict[str, str] = {}
        if ref is not None:
            check_required("external_reference_service_model_ref", ref)
            if _DIGITS.fullmatch(ref):
                out["external_reference_service_model_ref"] = ref
            elif refs is not None:
                raise KantataValueError(
                    "give a non-numeric external_reference_service_model_ref or "
                    "external_reference_service_model_refs, not both"
                )
            else:
                refs = [ref]
        if refs is not None:
            out["external_reference_service_model_refs"] = _refs_param(
                "external_reference_service_model_refs", refs
            )
        return out

    def get_status_report(
        self, report_id: str | int, *, include: Sequence[str] = _STATUS_REPORT_INCLUDE
    ) -> StatusReport:
        """One status report. NotFoundError (404) if it does not exist."""
        path = f"/status_reports/{_path_id('report_id', report_id)}"
        params = _drop_none({"include": _include_param(include)})
        return self._one("GET", path, "status_reports", StatusReport.from_api, params=params, repeatable=True)

    def update_status_report(self, report_id: str | int, report: StatusReport) -> StatusReport:
        """Replace a report's colour, description, details and external reference (``PUT``; repeated on 429/5xx).

        ``workspace_id`` is not sent (a report cannot move). Kantata deletes any category left out of
        ``details``, so pass the full set.
        """
        path = f"/status_reports/{_path_id('report_id', report_id)}"
        body = {"status_report": report.to_body(for_update=True)}
        params = {"include": ",".join(_STATUS_REPORT_INCLUDE)}
        return self._one(
            "PUT", path, "status_reports", StatusReport.from_api, params=params, body=body, repeatable=True
        )

    def delete_status_report(self, report_id: str | int) -> None:
        """Delete a status report (204). NotFoundError if it is already gone."""
        self._delete(f"/status_reports/{_path_id('report_id', report_id)}")

    # ------------------------------------------------------------------ task status sets

    def _task_status_set(
        self, method: str, path: str, *, name: str | None = None, include_statuses: bool = True
    ) -> TaskStatusSet:
        """One set from ``method path`` (a ``name`` is sent wrapped); only a POST (a create) is sent once."""
        body = None if name is None else {"task_status_set": {"name": check_required("name", name)}}
        params = {"include": "custom_task_statuses"} if include_statuses else {}
        return self._one(
            method,
            path,
            "task_status_sets",
            TaskStatusSet.from_api,
            params=params,
            body=body,
            repeatable=method != "POST",
        )

    def list_task_status_sets(self, *, include_statuses: bool = True) -> Iterator[TaskStatusSet]:
        """All task status sets on the account (Kantata has no name filter: match ``name`` yourself)."""
        params = {"include": "custom_task_statuses"} if include_statuses else {}
        return self._models("/task_status_sets", "task_status_sets", TaskStatusSet.from_api, params)

    def create_task_status_set(self, name: str) -> TaskStatusSet:
        """Create a set (Kantata adds its 4 default statuses), returned with those statuses. Sent once."""
        return self._task_status_set("POST", "/task_status_sets", name=name)

    def get_task_status_set(self, set_id: str | int, *, include_statuses: bool = True) -> TaskStatusSet:
        """One task status set, with its statuses ordered by position when ``include_statuses``."""
        path = f"/task_status_sets/{_path_id('set_id', set_id)}"
        return self._task_status_set("GET", path, include_statuses=include_statuses)

    def update_task_status_set(self, set_id: str | int, name: str) -> TaskStatusSet:
        """Rename a set (the only field a set has)."""
        return self._task_status_set("PUT", f"/task_status_sets/{_path_id('set_id', set_id)}", name=name)

    def delete_task_status_set(self, set_id: str | int) -> None:
        """Delete a set and its statuses; Kantata refuses (4xx) while a project uses it."""
        self._delete(f"/task_status_sets/{_path_id('set_id', set_id)}")

    def make_account_default(self, set_id: str | int) -> TaskStatusSet:
        """Make the set the default for new projects (``PUT …/update_account_default``, no body)."""
        return self._task_status_set(
            "PUT", f"/task_status_sets/{_path_id('set_id', set_id)}/update_account_default"
        )

    # ------------------------------------------------------------------ custom task statuses

    def list_custom_task_statuses(self) -> Iterator[CustomTaskStatus]:
        """Every custom task status on the account (no filter by set: use get_task_status_set for one set)."""
        return self._models("/custom_task_statuses", "custom_task_statuses", CustomTaskStatus.from_api)

    def create_custom_task_status(
        self, status_set_id: str | int, status: str, category: str
    ) -> CustomTaskStatus:
        """Add a status to a set. Sent once. KantataValueError (nothing sent) for an unknown category."""
        body = {
            "custom_task_status": {
                "status": check_required("status", status),
                "category": check_enum("category", category, STATUS_CATEGORIES),
                "status_set_id": int(_path_id("status_set_id", status_set_id)),
            }
        }
        return self._one(
            "POST",
            "/custom_task_statuses",
            "custom_task_statuses",
            CustomTaskStatus.from_api,
            body=body,
            repeatable=False,
        )

    def get_custom_task_status(self, status_id: str | int) -> CustomTaskStatus:
        """One custom task status."""
        path = f"/custom_task_statuses/{_path_id('status_id', status_id)}"
        return self._one("GET", path, "custom_task_statuses", CustomTaskStatus.from_api, repeatable=True)

    def update_custom_task_status(
        self, status_id: str | int, *, status: str | None = None, position: int | None = None
    ) -> CustomTaskStatus:
        """Rename and/or move a status (its category and set cannot change). Give at least one of the two."""
        path = f"/custom_task_statuses/{_path_id('status_id', status_id)}"
        fields: dict[str, Any] = {}
        if status is not None:
            fields["status"] = check_required("status", status)
        if position is not None:
            if isinstance(position, bool) or not isinstance(position, int) or position < 0:
                raise KantataValueError(f"position must be a non-negative integer; got {position!r}")
            fields["position"] = position
        if not fields:
            raise KantataValueError("update_custom_task_status needs status or position")
        return self._one(
            "PUT",
            path,
            "custom_task_statuses",
            CustomTaskStatus.from_api,
            body={"custom_task_status": fields},
            repeatable=True,
        )

    def delete_custom_task_status(self, status_id: str | int) -> None:
        """Delete a status; tasks using it fall back to their category's default status."""
        self._delete(f"/custom_task_statuses/{_path_id('status_id', status_id)}")

    # ------------------------------------------------------------------ external references

    def list_external_references(
        self,
        subject_type: str,
        *,
        subject_id: int | None = None,
        service_name: str | None = None,
        service_model: str | None = None,
        service_model_ref: str | None = None,
        status: str | None = None,
        include: Sequence[str] = (),
        per_page: int = MAX_PER_PAGE,
    ) -> Iterator[ExternalReference]:
        """External references of one subject type (required by Kantata), filtered, lazily across pages.

        ``service_model_ref`` is a string filter here (unlike the integer-typed ``external_reference_*`` filters
        of /workspaces and /status_reports). ``include=("subject",)`` side-loads each subject: a workspace
        subject is then on the reference's ``workspace`` (see ExternalReference).
        """
        params = _drop_none(
            {
                "subject_type": check_enum("subject_type", subject_type, EXTERNAL_REFERENCE_SUBJECT_TYPES),
                "subject_id": _path_id("subject_id", subject_id) if subject_id is not None else None,
                "service_name": service_name,
                "service_model": service_model,
                "service_model_ref": service_model_ref,
                "status": check_enum("status", status, EXTERNAL_REFERENCE_STATUSES)
                if status is not None
                else None,
                "include": _include_param(include),
            }
        )
        return self._models(
            "/external_references",
            "external_references",
            ExternalReference.from_api,
            params,
            per_page=per_page,
        )

    def create_or_update_external_reference(self, ref: ExternalReferenceUpsert) -> ExternalReference:
        """Upsert an external reference. An upsert is safe to repeat, so it is retried like a PUT."""
        check_enum("external_reference.subject_type", ref.subject_type, EXTERNAL_REFERENCE_SUBJECT_TYPES)
        body = {"external_reference": ref.to_body()}
        return self._one(
            "POST",
            "/external_references/create_or_update",
            "external_references",
            ExternalReference.from_api,
            body=body,
            repeatable=True,
        )

    def delete_external_reference(self, ref_id: str | int) -> None:
        """Delete an external reference (204)."""
        self._delete(f"/external_references/{_path_id('ref_id', ref_id)}")

    # ------------------------------------------------------------------ stories (tasks)

    def list_stories(
        self,
        *,
        workspace_id: str | int | None = None,
        external_reference_service_name: str | None = None,
        external_reference_service_model: str | None = None,
        external_reference_service_model_ref: str | None = None,
        external_reference_service_model_refs: Sequence[str] | None = None,
        only: Sequence[str | int] | None = None,
        by_status: Sequence[str] | None = None,
        show_deleted: bool = False,
        show_archived: bool = False,
        show_todos: bool = False,
        include: Sequence[str] = STORY_INCLUDE,
        optional_fields: Sequence[str] = STORY_OPTIONAL_FIELDS,
        per_page: int = MAX_PER_PAGE,
    ) -> Iterator[Story]:
        """Stories matching the filters, lazily across pages (Kantata's default order: updated_at:desc).

        To find the task linked to a tracker object, give ``external_reference_service_name``, ``_model`` and
        ``_model_refs`` (CONTRACT §6.7 option A). A numeric ``external_reference_service_model_ref`` is sent as
        Kantata's integer-typed filter, a non-numeric one as a one-item ``_refs`` list (as for status
        reports). Kantata hides soft-deleted and archived tasks and To Dos unless ``show_deleted``,
        ``show_archived`` or ``show_todos``. ``by_status`` filters by status NAME. KantataValueError (nothing
        sent) for an empty ``only``/``by_status``/refs list, a comma inside one item, or a non-numeric id.
        """
        refs = self._model_refs(external_reference_service_model_ref, external_reference_service_model_refs)
        params = _drop_none(
            {
                "workspace_id": _path_id("workspace_id", workspace_id) if workspace_id is not None else None,
                "external_reference_service_name": external_reference_service_name,
                "external_reference_service_model": external_reference_service_model,
                **refs,
                "only": _names_param("only", only, _path_id) if only is not None else None,
                "by_status": _names_param("by_status", by_status, check_required)
                if by_status is not None
                else None,
                "show_deleted": "true" if show_deleted else None,
                "show_archived": "true" if show_archived else None,
                "show_todos": "true" if show_todos else None,
                **_story_params(include, optional_fields),
            }
        )
        return self._models("/stories", "stories", Story.from_api, params, per_page=per_page)

    def get_story(
        self,
        story_id: str | int,
        *,
        include: Sequence[str] = STORY_INCLUDE,
        show_deleted: bool = False,
        optional_fields: Sequence[str] = STORY_OPTIONAL_FIELDS,
    ) -> Story:
        """One story. NotFoundError (404) if it does not exist or was deleted (unless ``show_deleted``)."""
        path = f"/stories/{_path_id('story_id', story_id)}"
        params = _story_params(include, optional_fields)
        if show_deleted:
            params["show_deleted"] = "true"
        return self._one("GET", path, "stories", Story.from_api, params=params, repeatable=True)

    def create_story(
        self,
        new_story: NewStory,
        *,
        include: Sequence[str] = STORY_INCLUDE,
        optional_fields: Sequence[str] = STORY_OPTIONAL_FIELDS,
    ) -> Story:
        """Create a story (``POST /stories``), returned with its workspace and external references.

        Sent once, never repeated in-process, like ``create_status_report``: a 429/5xx/timeout is raised with
        ``retryable=True``, and since the create may have been made, the caller looks the task up by its
        external reference before creating again. KantataValueError (nothing sent) for values Kantata would
        refuse; ValidationError (422, ``field_errors``) for a status name outside the workspace's set, an
        unknown workspace and the like.
        """
        body = {"story": new_story.to_body()}
        params = _story_params(include, optional_fields)
        return self._one(
            "POST", "/stories", "stories", Story.from_api, params=params, body=body, repeatable=False
        )

    def update_story(
        self,
        story_id: str | int,
        *,
        status: str | None = None,
        state: StatusCategory | None = None,
        external_reference: StoryExternalReference | None = None,
        title: str | None = None,
        description: str | None = None,
        story_type: StoryType | None = None,
        priority: StoryPriority | None = None,
        start_date: str | date | None = None,
        due_date: str | date | None = None,
        archived: bool | None = None,
        include: Sequence[str] = STORY_INCLUDE,
        optional_fields: Sequence[str] = STORY_OPTIONAL_FIELDS,
    ) -> Story:
        """Change a story (``PUT /stories/{id}``; repeated on 429/5xx: the same PUT twice lands once).

        Only the fields given are sent. ``status`` is a status NAME valid in the story's workspace (Kantata sets
        ``state`` to its category); ``state`` alone moves it to that category's default status; giving both
        is refused. ``external_reference`` is upserted on the story + its ``service_name`` in the same call.
        KantataValueError (nothing sent) when nothing would change or a value is outside Kantata's lists;
        NotFoundError if the story is gone (or soft-deleted); ValidationError (422) for a refused value.
        """
        path = f"/stories/{_path_id('story_id', story_id)}"
        update = StoryUpdate(
            status=status,
            state=state,
            title=title,
            description=description,
            story_type=story_type,
            priority=priority,
            start_date=start_date,
            due_date=due_date,
            archived=archived,
            external_reference=external_reference,
        )
        body = {"story": update.to_body()}
        params = _story_params(include, optional_fields)
        return self._one("PUT", path, "stories", Story.from_api, params=params, body=body, repeatable=True)

    def delete_story(self, story_id: str | int) -> None:
        """Soft-delete a story (204; Kantata sets ``deleted_at``). NotFoundError if it is already gone; a repeat
        whose first answer was lost counts as done."""
        self._delete(f"/stories/{_path_id('story_id', story_id)}")

    # ------------------------------------------------------------------ workspaces

    def get_workspace(self, workspace_id: str | int, *, include: Sequence[str] = ()) -> Workspace:
        """One workspace, with ``task_statuses`` (the names its tasks can take). ``include=("external_references",)``
        fills ``external_references``. NotFoundError (404) if missing or archived (Kantata hides archived ones)."""
        path = f"/workspaces/{_path_id('workspace_id', workspace_id)}"
        params = _drop_none({"include": _include_param(include)})
        return self._one("GET", path, "workspaces", Workspace.from_api, params=params, repeatable=True)

    def list_workspaces(
        self,
        *,
        matching: str | None = None,
        external_reference_service_name: str | None = None,
        external_reference_service_model: str | None = None,
        external_reference_service_model_ref: str | None = None,
        external_reference_service_model_refs: Sequence[str] | None = None,
        include_archived: bool = False,
        include: Sequence[str] = (),
        per_page: int = MAX_PER_PAGE,
    ) -> Iterator[Workspace]:
        """Workspaces matching the filters, lazily. ``GET /workspaces`` has its own rate limit: cache results.

        ``matching`` is Kantata's word-prefix title search, not an exact match: compare ``title`` yourself.
        The external-reference filters find a workspace linked to a repository or project (e.g. ``github`` /
        ``repository`` / ``acme/webapp``); a non-numeric ``external_reference_service_model_ref`` is sent as a
        one-item ``_refs`` list, as for status reports.
        """
        refs = self._model_refs(external_reference_service_model_ref, external_reference_service_model_refs)
        params = _drop_none(
            {
                "matching": matching,
                "external_reference_service_name": external_reference_service_name,
                "external_reference_service_model": external_reference_service_model,
                **refs,
                "include_archived": "true" if include_archived else None,
                "include": _include_param(include),
            }
        )
        return self._models("/workspaces", "workspaces", Workspace.from_api, params, per_page=per_page)

    def bulk_update_workspace_task_status_sets(
        self, assignments: Sequence[WorkspaceTaskStatusSet]
    ) -> list[WorkspaceTaskStatusSet]:
        """Assign task status sets to workspaces in one all-or-nothing ``PUT`` (repeated on 429/5xx).

        An empty list sends nothing and returns []. A workspace listed twice is refused (KantataValueError).
        If Kantata refuses any workspace, nothing changes and ValidationError (422) is raised; the
        per-workspace reasons are on its ``errors``/``field_errors`` and, whole, on its ``payload``.
        """
        if not assignments:
            return []
        seen: set[int] = set()
        items = []
        for assignment in assignments:
            item = assignment.to_body()
            if item["workspace_id"] in seen:
                raise KantataValueError(f"workspace {item['workspace_id']} is assigned more than once")
            seen.add(item["workspace_id"])
            items.append(item)
        path = "/workspace_task_status_sets/bulk_update"
        payload = self._request("PUT", path, body={"workspace_task_status_sets": items}, repeatable=True)
        page = decode_envelope(payload, "workspace_task_status_sets", method="PUT", path=path)
        out = []
        for obj in page.objects:
            workspace_id, status_set_id = (
                _int_field(obj.get("workspace_id")),
                _int_field(obj.get("status_set_id")),
            )
            if workspace_id is None or status_set_id is None:
                raise MalformedResponseError(
                    f"Kantata PUT {path} returned an assignment without integer workspace_id/status_set_id",
                    method="PUT",
                    path=path,
                )
            out.append(WorkspaceTaskStatusSet(workspace_id=workspace_id, status_set_id=status_set_id))
        return out
