"""Diagnostics for a terminal: the bridge's log records as one plain line each, on standard error.

The Kantata client logs each retry through the Powertools logger (``kantata_bridge.observability``), which
writes a JSON line to standard output: right in a Lambda (CloudWatch reads it), wrong for a command whose
standard output is its data (``--json`` must print JSON and nothing else). A command runs inside
``terminal_diagnostics()``: for that time the logger's records go to standard error as ``warning: …`` lines,
and afterwards the logger is as it was. Only the CLI process is touched; the Lambdas log as before.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

# The client's retry record carries these (kantata/client.py, KantataClient._log_retry).
_RETRY_FIELDS = ("kantata_method", "kantata_path", "attempt", "retry_delay_s")
_WHY = {
    "RateLimitError": "rate limited",
    "UnavailableError": "unavailable",
    "KantataConnectionError": "connection error",
    "KantataTimeoutError": "timed out",
}


def retry_text(record: logging.LogRecord) -> str | None:
    """``Kantata GET /task_status_sets failed (503, unavailable); retry 1 in 0.4 s`` for the Kantata client's
    retry record; None for any other record."""
    fields = record.__dict__
    if not all(name in fields for name in _RETRY_FIELDS):
        return None
    status = fields.get("kantata_status")
    why = _WHY.get(str(fields.get("error_type")), str(fields.get("error_type") or "error"))
    cause = f"{status}, {why}" if status else why
    return (
        f"Kantata {fields['kantata_method']} {fields['kantata_path']} failed ({cause}); "
        f"retry {fields['attempt']} in {float(fields['retry_delay_s']):.1f} s"
    )


class TerminalFormatter(logging.Formatter):
    """One human line per record: ``warning: Kantata GET /task_status_sets failed (503, unavailable); retry 1 in
    0.4 s``. Other records: ``<level>: <message>``."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {retry_text(record) or record.getMessage()}"


@contextmanager
def terminal_diagnostics(stream: TextIO | None = None) -> Iterator[None]:
    """Send the bridge logger's warnings and errors to ``stream`` (default: the current ``sys.stderr``) as
    plain lines while the block runs, instead of JSON on standard output. Restores the logger afterwards."""
    from kantata_bridge.observability import logger  # the same logger the Kantata client logs through

    target = logging.getLogger(logger.name)
    saved = list(target.handlers)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setLevel(logging.WARNING)  # a terminal wants what went wrong, not the Lambdas' info records
    handler.setFormatter(TerminalFormatter())
    target.handlers = [handler]
    try:
        yield
    finally:
        target.handlers = saved
