"""The Kantata bearer token, read from Secrets Manager through Powertools Parameters (worker and catalog)."""

from __future__ import annotations


def fetch_token(secret_name: str, *, max_age: int | None = None, force_fetch: bool = False) -> str:
    """The secret's value as text, surrounding whitespace removed ('' when the secret holds only that).

    ``max_age``: seconds Powertools may serve it from its cache (None: Powertools' default). Raises
    ``parameters.GetParameterError`` when the secret cannot be read; its message names the secret, never
    the value.
    """
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_name, max_age=max_age, force_fetch=force_fetch)
    return (value.decode("utf-8") if isinstance(value, bytes) else str(value)).strip()
