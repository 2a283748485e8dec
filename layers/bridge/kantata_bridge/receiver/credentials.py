"""Where the receiver gets the webhook secrets and shared tokens it verifies deliveries with.

The value of the Secrets Manager secret named by ``WEBHOOK_SECRETS_NAME`` is a JSON object::

    {"github": ["new-secret", "old-secret"], "jira": "jira-secret", "jira_tokens": ["automation-token"]}

``<tracker>`` holds the active HMAC secrets (a list, newest first, or one string); ``<tracker>_tokens``
holds the shared tokens for ``shared-token`` mode. Several active entries let a secret be rotated without
downtime: add the new one, change the tracker, remove the old one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

# Imported with the module, not on first use: every signed delivery reads its secret through Parameters,
# and the receiver imports this module during init, with the garbage collector off (see
# functions/webhook_receiver/app.py), which makes it cheaper there than on the first request.
from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import BotoCoreError

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
    """Credentials from AWS Secrets Manager through Powertools Parameters, cached for ``max_age`` seconds.

    A rotation therefore takes effect within ``max_age`` seconds on warm Lambdas. The provider shares the
    receiver's boto3 session (see :mod:`kantata_bridge.receiver.clients`) instead of opening its own.
    """

    def __init__(self, secret_name: str, max_age: int, clients: AwsClients | None = None) -> None:
        self._secret_name = secret_name
        self._max_age = max_age
        self._clients = clients or AwsClients()
        self._provider: Any = None

    def secrets_for(self, tracker: str) -> tuple[str, ...]:
        return credential_list(self._fetch(), tracker)

    def tokens_for(self, tracker: str) -> tuple[str, ...]:
        return credential_list(self._fetch(), f"{tracker}_tokens")

    def _fetch(self) -> Mapping[str, Any]:
        try:
            if self._provider is None:
                self._provider = parameters.SecretsProvider(
                    boto3_client=self._clients.client("secretsmanager")
                )
            document = self._provider.get(self._secret_name, transform="json", max_age=self._max_age)
        except (parameters.GetParameterError, parameters.TransformParameterError, BotoCoreError):
            # The underlying message names the secret id and the AWS error, never the value; still keep it
            # out of the answer and keep only the class in the log.
            raise CredentialsUnavailableError(
                "credentials_unavailable", "the webhook secrets could not be read from Secrets Manager"
            ) from None
        if not isinstance(document, Mapping):
            raise CredentialsUnavailableError(
                "credentials_invalid", "the webhook secret is not a JSON object"
            )
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
