"""The bridge's log lines, captured for assertions."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def bridge_log_lines() -> Iterator[io.StringIO]:
    """What the bridge's loggers write inside the block: the worker's Powertools logger and the receiver's
    light logger (kantata_bridge.receiver.telemetry).

    The Powertools handler keeps the stream it was built with (sys.stdout at first import), so capsys only
    sees its lines when the test happens to import it first; point both at a buffer instead.
    """
    from kantata_bridge.observability import logger
    from kantata_bridge.receiver.telemetry import logger as receiver_logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(buffer)
    previous_receiver = receiver_logger.redirect(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)
        receiver_logger.redirect(previous_receiver)
