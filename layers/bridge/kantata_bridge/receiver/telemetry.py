"""The receiver's structured log lines and metrics, in the shapes Powertools writes, without importing it.

Why not Powertools' Logger and Metrics here (the worker and catalog functions use them): importing them costs
about 5 ms of every receiver cold start (measured, docs/receiver.md), half of the whole 5 % budget the
receiver has over a bare handler, and their per-request work (context injection, a JSON formatter with
many fields, EMF validation) is most of the warm cost that is not the HMAC. The receiver writes a handful
of log lines and counters per delivery, so it does that with the standard library, in the same shapes:

- a log line is one JSON object with Powertools' keys (``level``, ``location``, ``message``,
  ``timestamp``, ``service``, ``cold_start``, ``function_name``, ``function_request_id``,
  ``correlation_id``, …) plus the line's own fields, on stdout;
- metrics are one CloudWatch embedded-metric-format (EMF) document per invocation, namespace
  ``POWERTOOLS_METRICS_NAMESPACE`` with the dimensions ``service`` and ``tracker``, as Powertools emits them,
  so dashboards and alarms read the same metric names.

The level comes from ``POWERTOOLS_LOG_LEVEL``, else ``LOG_LEVEL``, else ``AWS_LAMBDA_LOG_LEVEL``; default INFO.
Nothing here reads the environment at import.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, Final, TextIO

SERVICE_DEFAULT: Final = "kantata-bridge"
NAMESPACE_DEFAULT: Final = "KantataBridge"
# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged as a field.
_RECORD_ATTRIBUTES: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _service() -> str:
    return os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE_DEFAULT


class _JsonFormatter(logging.Formatter):
    """One JSON object per record: Powertools' keys, the invocation's keys, then the record's own fields."""

    def __init__(self, keys: dict[str, Any]) -> None:
        super().__init__()
        self._keys = keys

    def format(self, record: logging.LogRecord) -> str:
        created = time.gmtime(record.created)
        doc: dict[str, Any] = {
            "level": record.levelname,
            "location": f"{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%S", created) + f",{int(record.msecs):03d}+0000",
            **self._keys,
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES:
                doc[key] = value
        if record.exc_info:
            doc["exception_name"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False, separators=(",", ":"))


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``stream`` if given, else to ``sys.stdout`` as it is at each line (so a test's capture,
    or a tool that swaps stdout, sees the lines)."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream or sys.stdout)
        self._fixed = stream

    def set_fixed(self, stream: TextIO | None) -> None:
        self._fixed = stream

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = self._fixed or sys.stdout
        super().emit(record)


class Logger:
    """The few Powertools ``Logger`` calls the receiver makes, on a standard-library logger.

    ``stream`` defaults to ``sys.stdout`` as it is when the first line is written (Lambda sends stdout to
    CloudWatch Logs).
    """

    def __init__(self, name: str = "kantata_bridge.receiver", stream: TextIO | None = None) -> None:
        self._keys: dict[str, Any] = {}
        self._log = logging.getLogger(name)
        self._log.propagate = False  # its own JSON lines only; never a second copy through a root handler
        self._stream = stream
        self._handler: _StdoutHandler | None = None
        self._level_read = False

    @property
    def std_logger(self) -> logging.Logger:
        """The standard-library logger underneath (tests attach handlers to it)."""
        return self._log

    def _ready(self) -> logging.Logger:
        if self._handler is None:
            self._handler = _StdoutHandler(self._stream)
            self._handler.setFormatter(_JsonFormatter(self._keys))
            self._log.addHandler(self._handler)
        if not self._level_read:
            self._level_read = True
            if self._log.level == logging.NOTSET:
                self.set_level(
                    os.environ.get("POWERTOOLS_LOG_LEVEL")
                    or os.environ.get("LOG_LEVEL")
                    or os.environ.get("AWS_LAMBDA_LOG_LEVEL")
                    or "INFO"
                )
        return self._log

    def redirect(self, stream: TextIO | None) -> TextIO | None:
        """Write lines to ``stream`` from now on (None: stdout); returns the previous setting (local tools
        send the function logs to a file)."""
        previous, self._stream = self._stream, stream
        if self._handler is not None:
            self._handler.set_fixed(stream)
        return previous

    def format(self, record: logging.LogRecord) -> str:
        """``record`` as the line this logger writes (tests capture records and check the lines)."""
        return _JsonFormatter(self._keys).format(record)

    @property
    def level(self) -> int:
        return self._ready().level

    def set_level(self, level: str | int) -> None:
        """Set the level (a name such as ``DEBUG`` or a number); an unknown name falls back to INFO."""
        self._level_read = True
        if isinstance(level, str):
            level = logging.getLevelNamesMapping().get(level.strip().upper(), logging.INFO)
        self._log.setLevel(level)

    # -- keys carried by every line of the invocation

    def start(self, context: Any, *, cold_start: bool) -> None:
        """Begin an invocation: forget the last one's keys, note the Lambda context."""
        self._keys.clear()
        self._keys.update(
            service=_service(),
            cold_start=cold_start,
            function_name=getattr(context, "function_name", None),
            function_memory_size=getattr(context, "memory_limit_in_mb", None),
            function_arn=getattr(context, "invoked_function_arn", None),
            function_request_id=getattr(context, "aws_request_id", None),
        )
        trace = os.environ.get("_X_AMZN_TRACE_ID")
        if trace:
            self._keys["xray_trace_id"] = trace.split(";", 1)[0].removeprefix("Root=")

    def append_keys(self, **keys: Any) -> None:
        self._keys.update(keys)

    def set_correlation_id(self, value: str | None) -> None:
        self._keys["correlation_id"] = value

    # -- lines

    def debug(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        self._write(logging.DEBUG, message, extra)

    def info(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        self._write(logging.INFO, message, extra)

    def warning(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        self._write(logging.WARNING, message, extra)

    def error(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        self._write(logging.ERROR, message, extra)

    def exception(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        """An ERROR line with the current exception's type and traceback (logs only, never an answer)."""
        log = self._ready()
        if log.isEnabledFor(logging.ERROR):
            log.error(message, extra=dict(extra or {}), exc_info=True, stacklevel=2)

    def _write(self, level: int, message: str, extra: Mapping[str, Any] | None) -> None:
        log = self._ready()
        if log.isEnabledFor(level):
            log.log(level, message, extra=dict(extra or {}), stacklevel=3)


class Metrics:
    """Counters for one invocation, flushed as one CloudWatch EMF document (Powertools' shape)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._values: dict[str, float] = {}
        self._units: dict[str, str] = {}
        self._dimensions: dict[str, str] = {}

    def add_dimension(self, name: str, value: str) -> None:
        self._dimensions[name] = value

    def add_metric(self, name: str, unit: str, value: float) -> None:
        self._values[name] = self._values.get(name, 0.0) + float(value)
        self._units[name] = unit

    def flush(self) -> None:
        """Print the invocation's metrics (nothing when none were added, or with POWERTOOLS_METRICS_DISABLED
        set as Powertools reads it) and start afresh."""
        disabled = os.environ.get("POWERTOOLS_METRICS_DISABLED", "").strip().lower() in (
            "1",
            "true",
            "yes",
            "on",
        )
        if self._values and not disabled:
            dimensions = {**self._dimensions, "service": _service()}
            doc: dict[str, Any] = {
                "_aws": {
                    "Timestamp": int(time.time() * 1000),
                    "CloudWatchMetrics": [
                        {
                            "Namespace": os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE_DEFAULT,
                            "Dimensions": [list(dimensions)],
                            "Metrics": [{"Name": n, "Unit": self._units[n]} for n in self._values],
                        }
                    ],
                },
                **dimensions,
                **self._values,
            }
            stream = self._stream or sys.stdout
            stream.write(json.dumps(doc, separators=(",", ":")) + "\n")
            stream.flush()
        self._values = {}
        self._units = {}
        self._dimensions = {}


logger = Logger()
metrics = Metrics()
