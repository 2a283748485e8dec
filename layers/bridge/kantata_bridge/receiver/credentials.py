"""Where the receiver gets the webhook secrets and shared tokens it verifies deliveries with.

The value of the Secrets Manager secret named by ``WEBHOOK_SECRETS_NAME`` is a JSON object::

    {"github": ["new-secret", "old-secret"], "jira": "jira-secret", "jira_tokens": ["automation-token"]}

``<tracker>`` holds the active HMAC secrets (a list, newest first, or one string); ``<tracker>_tokens``
holds the shared tokens for ``shared-token`` mode. Several active entries let a secret be rotated without
downtime: add the new one, change the tracker, remove the old one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Protocol

from kantata_bridge.receiver.clients import AwsClients
from kantata_bridge.receiver.errors import CredentialsUnavailableError


class CredentialSource(Protocol):
    """Gives the active secrets and tokens for a tracker."""

    def secrets_for(self, tracker: str) -> tuple[str, ...]:
        """Active HMAC secrets. Raises CredentialsUnavailableError when they cannot be read."""
        ...

    def tokens_for(self, tracker: str) -> tuple[str, ...]:
        """Active shared tokens. Raises CredentialsUnavailableError when they cannot be read."""
        ...


class StaticCredentials:
    """Credentials held in memory (tests, benchmarks, local tools) in the secret's JSON shape."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document

    def secrets_for(self, tracker: str) -> tuple[str, ...]:
        return credential_list(self._document, tracker)

    def tokens_for(self, tracker: str) -> tuple[str, ...]:
        return credential_list(self._document, f"{tracker}_tokens")

    def __repr__(self) -> str:
        return f"StaticCredentials(keys={sorted(self._document)!r})"


class SecretsManagerCredentials:
    """Credentials from AWS Secrets Manager, cached for ``max_age`` seconds.

    A rotation therefore takes effect within ``max_age`` seconds on warm Lambdas. The client comes from the
    receiver's shared boto3 session (see :mod:`kantata_bridge.receiver.clients`). Nothing is fetched before
    the first delivery, so a SnapStart snapshot never holds a secret.

    Written with boto3 directly rather than Powertools Parameters: the one call and a time-to-live are all it
    needs, and Parameters' import was 2 ms of every cold start (docs/receiver.md).
    """

    def __init__(self, secret_name: str, max_age: int, clients: AwsClients | None = None) -> None:
        self._secret_name = secret_name
        self._max_age = max_age
        self._clients = clients or AwsClients()
        self._document: Mapping[str, Any] | None = None
        self._expires = 0.0

    def secrets_for(self, tracker: str) -> tuple[str, ...]:
        return credential_list(self._fetch(), tracker)

    def tokens_for(self, tracker: str) -> tuple[str, ...]:
        return credential_list(self._fetch(), f"{tracker}_tokens")

    def forget(self) -> None:
        """Drop the cached secret, so the next delivery reads it again (e.g. after a SnapStart restore)."""
        self._document = None
        self._expires = 0.0

    def _fetch(self) -> Mapping[str, Any]:
        now = time.monotonic()
        if self._document is not None and now < self._expires:
            return self._document
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._clients.client("secretsmanager").get_secret_value(SecretId=self._secret_name)
            document = json.loads(response["SecretString"])
        except (BotoCoreError, ClientError, KeyError, TypeError, ValueError):
            # The AWS error names the secret id, never the value; still keep it out of the answer and log.
            raise CredentialsUnavailableError(
                "credentials_unavailable", "the webhook secrets could not be read from Secrets Manager"
            ) from None
        if not isinstance(document, Mapping):
            raise CredentialsUnavailableError(
                "credentials_invalid", "the webhook secret is not a JSON object"
            )
        self._document, self._expires = document, now + self._max_age
        return document

    def __repr__(self) -> str:
        return f"SecretsManagerCredentials(secret_name={self._secret_name!r}, max_age={self._max_age})"


def credential_list(document: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """The non-empty strings under ``key`` (a list or one string); () when the key is absent.

    Raises CredentialsUnavailableError when the entry has another shape (never showing the value).
    """
    value = document.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(item for item in value if item)
    raise CredentialsUnavailableError(
        "credentials_invalid", f"webhook secret entry {key!r} is not a string or a list of strings"
    )
