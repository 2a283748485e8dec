"""What every command that calls Kantata shares: ``--base-url`` and ``--token-env``, the target line it prints
first on stderr, and a URL shown without any ``user:password@`` part (``catalog``, ``link``)."""

from __future__ import annotations

import argparse
import os
from typing import Final
from urllib.parse import urlsplit

from kantata_bridge.kantata import DEFAULT_BASE_URL

DEFAULT_TOKEN_ENV: Final = "KANTATA_TOKEN"  # noqa: S105 (the name of a variable, not a token)
SANDBOX_HINT: Final = (
    "For the local sandbox: kantata-sandbox --port 8900, then "
    "KANTATA_TOKEN=sandbox-token … --base-url http://127.0.0.1:8900/api/v1"
)


def add_kantata_options(parser: argparse.ArgumentParser) -> None:
    """``--base-url`` (default ``$KANTATA_BASE_URL``, else the public API) and ``--token-env``."""
    parser.add_argument(
        "--base-url",
        default=os.environ.get("KANTATA_BASE_URL", DEFAULT_BASE_URL),
        metavar="URL",
        help=f"Kantata API base URL (default: $KANTATA_BASE_URL or the public API, {DEFAULT_BASE_URL})",
    )
    parser.add_argument(
        "--token-env",
        default=DEFAULT_TOKEN_ENV,
        metavar="VAR",
        help=f"environment variable holding the Kantata token (default: {DEFAULT_TOKEN_ENV})",
    )


def url_problem(url: str, flag: str = "--base-url", example: str = DEFAULT_BASE_URL) -> str | None:
    """Why ``url`` cannot be a base URL for ``flag`` (the message names the flag), or None when it can."""
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # not a number, or out of range
        port_ok = False
    # The scheme as typed (urlsplit lower-cases it; the Kantata client and botocore want it lower-case)
    if not url.startswith(("http://", "https://")) or not parts.hostname or not port_ok:
        return f"{flag} must be an http(s) URL such as {example}; got {shown_url(url)!r}"
    return None


def shown_url(url: str) -> str:
    """The URL as printed: without any user:password@ part."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}" if sep else url.rpartition("@")[2]


def target_line(url: str) -> str:
    """The first stderr line of a command that calls Kantata: where it goes (the live API said so)."""
    if url.rstrip("/") == DEFAULT_BASE_URL.rstrip("/"):
        return f"Kantata: {url} (the live Kantata API; --base-url or $KANTATA_BASE_URL to change)"
    return f"Kantata: {shown_url(url)}"
