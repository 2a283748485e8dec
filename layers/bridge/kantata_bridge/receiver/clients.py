"""boto3 clients for the receiver, built on first use from one shared session.

One session matters for cold start: every boto3 session loads the endpoint and partition data and the service
models again (measured: a client from a second session ~48 ms, a second client from the same one ~3.4 ms; see
docs/receiver.md). Clients get short timeouts and few retries: a tracker gives up after
5-10 s, and a 503 in time (so it retries) beats a late 202.
"""

from __future__ import annotations

from typing import Any


class AwsClients:
    """Creates and keeps one boto3 client per service, all from the same session."""

    def __init__(self, session: Any = None) -> None:
        self._session = session
        self._clients: dict[str, Any] = {}

    @property
    def session(self) -> Any:
        """The shared boto3 session (created on first use; honours AWS_ENDPOINT_URL and the usual variables)."""
        if self._session is None:
            import boto3

            self._session = boto3.session.Session()
        return self._session

    def client(self, service: str) -> Any:
        """The client for ``service`` (``sqs``, ``s3``, ``secretsmanager``), built once."""
        if service not in self._clients:
            self._clients[service] = self.session.client(service, config=client_config())
        return self._clients[service]


def client_config() -> Any:
    """botocore settings for the receiver's calls: answer within a tracker's timeout, whatever happens."""
    from botocore.config import Config

    return Config(connect_timeout=2, read_timeout=4, retries={"max_attempts": 2, "mode": "standard"})
