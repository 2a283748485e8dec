"""pytest fixtures for the Kantata sandbox (registered in tests/conftest.py).

- ``kantata_sandbox``: one server per test session (it starts in milliseconds, but sharing it keeps the
  suite quick); each test gets it reset: no objects, no faults, an empty request log.
- ``kantata_sandbox_contract``: the same sandbox, and after the test every response it recorded is checked
  against the OpenAPI descriptions in ../shared/kantata/ (skips with a reason if they are missing).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kantata_sandbox.server import KantataSandbox


@pytest.fixture(scope="session")
def _kantata_sandbox_server() -> Iterator[KantataSandbox]:
    sandbox = KantataSandbox().start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def kantata_sandbox(_kantata_sandbox_server: KantataSandbox) -> Iterator[KantataSandbox]:
    """A running sandbox on 127.0.0.1 with fresh state: ``base_url``, ``token``, ``add_workspace``, ``faults``,
    ``requests``, ``state``."""
    _kantata_sandbox_server.reset()
    yield _kantata_sandbox_server
    _kantata_sandbox_server.reset()


@pytest.fixture
def kantata_sandbox_contract(kantata_sandbox: KantataSandbox) -> Iterator[KantataSandbox]:
    """``kantata_sandbox``, plus a check after the test that every recorded response matches the OpenAPI
    contract (CONTRACT.md quirks allowed, see kantata_sandbox.openapi)."""
    from kantata_sandbox import openapi

    try:
        openapi.load_contract()
    except openapi.SpecNotFoundError as exc:
        pytest.skip(str(exc))
    yield kantata_sandbox
    problems = openapi.check_recorded(kantata_sandbox.requests)
    if problems:
        pytest.fail("sandbox responses break the OpenAPI contract:\n" + "\n".join(problems), pytrace=False)
