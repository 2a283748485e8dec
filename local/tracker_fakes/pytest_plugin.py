"""pytest fixtures for the tracker fakes (registered in tests/conftest.py).

- ``fake_github``: one FakeGitHub per test session, reset for each test (no hooks, deliveries or faults, a full
  rate limit, an empty request log).
- ``fake_jira``: the same for FakeJira (no issues, no webhook, no faults).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tracker_fakes.github import FakeGitHub
from tracker_fakes.jira import FakeJira


@pytest.fixture(scope="session")
def _fake_github_server() -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_github(_fake_github_server: FakeGitHub) -> Iterator[FakeGitHub]:
    """A running fake GitHub on 127.0.0.1 with fresh state: ``url``, ``token``, ``add_hook``, ``send_event``,
    ``deliveries``, ``faults``, ``delivery_faults``, ``set_rate_limit``, ``secondary_limit``, ``requests``."""
    _fake_github_server.reset()
    yield _fake_github_server
    _fake_github_server.reset()


@pytest.fixture(scope="session")
def _fake_jira_server() -> Iterator[FakeJira]:
    server = FakeJira().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_jira(_fake_jira_server: FakeJira) -> Iterator[FakeJira]:
    """A running fake Jira on 127.0.0.1 with fresh state: ``url``, ``email``, ``api_token``, ``create_issue``,
    ``update_issue``, ``set_webhook``, ``faults``, ``webhook_faults``, ``requests``."""
    _fake_jira_server.reset()
    yield _fake_jira_server
    _fake_jira_server.reset()
