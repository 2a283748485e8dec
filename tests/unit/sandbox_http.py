"""A tiny HTTP helper for the sandbox tests: plain ``requests`` against the sandbox, token included."""

from __future__ import annotations

from typing import Any

import requests
from kantata_sandbox.server import KantataSandbox

TIMEOUT = 10


class Api:
    """Calls ``sandbox.base_url + path`` with the bearer token; returns the ``requests.Response``."""

    def __init__(self, sandbox: KantataSandbox) -> None:
        self.sandbox = sandbox
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {sandbox.token}"

    def url(self, path: str) -> str:
        return self.sandbox.base_url + path

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.url(path), params=params, timeout=TIMEOUT)

    def post(self, path: str, body: Any = None, **params: Any) -> requests.Response:
        return self.session.post(self.url(path), json=body, params=params, timeout=TIMEOUT)

    def put(self, path: str, body: Any = None, **params: Any) -> requests.Response:
        return self.session.put(self.url(path), json=body, params=params, timeout=TIMEOUT)

    def delete(self, path: str) -> requests.Response:
        return self.session.delete(self.url(path), timeout=TIMEOUT)

    # ---- shortcuts used by several tests ------------------------------------------------------------------

    def create_report(self, workspace_id: str, **fields: Any) -> dict[str, Any]:
        body = {"workspace_id": workspace_id, "color": "green", "description": "on track", **fields}
        response = self.post("/status_reports.json", {"status_report": body})
        assert response.status_code == 200, response.text
        return first(response.json())

    def create_set(self, name: str = "Engineering") -> dict[str, Any]:
        response = self.post("/task_status_sets.json", {"task_status_set": {"name": name}})
        assert response.status_code == 200, response.text
        return first(response.json())

    def set_statuses(self, set_id: str) -> list[dict[str, Any]]:
        body = self.get(f"/task_status_sets/{set_id}.json", include="custom_task_statuses").json()
        ids = body["task_status_sets"][set_id]["custom_task_status_ids"]
        return [body["custom_task_statuses"][i] for i in ids]


def first(envelope: dict[str, Any]) -> dict[str, Any]:
    """The first primary object of a response envelope, found through ``results``."""
    hit = envelope["results"][0]
    return dict(envelope[hit["key"]][hit["id"]])


def primary(envelope: dict[str, Any]) -> list[dict[str, Any]]:
    """All primary objects of an envelope, in ``results`` order."""
    return [envelope[hit["key"]][hit["id"]] for hit in envelope["results"]]


def error_fields(response: requests.Response) -> set[str]:
    return {e.get("field") for e in response.json()["errors"]}
