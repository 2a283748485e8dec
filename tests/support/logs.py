"""The bridge's log lines, captured for assertions."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def bridge_log_lines() -> Iterator[io.StringIO]:
    """What the bridge's Powertools logger writes inside the block.

    The logger's handler keeps the stream it was built with (sys.stdout at first import), so capsys only sees
    its lines when the test happens to import it first; point the handler at a buffer instead.
    """
    from kantata_bridge.observability import logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)
