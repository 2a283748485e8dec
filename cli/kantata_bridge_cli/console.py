"""What every command-line tool of the project does the same way (``kantata-bridge``, ``kantata-sandbox``).

- Exit codes: 0 ok, 1 failed, 2 bad input or usage; 130 where a command documents "interrupted".
- Errors: one line on stderr, ``<tool>: error: <what>``, and at most one more line saying what to do.
  Never a traceback for anything a user can type.
- Data on stdout (``--json`` prints JSON and nothing else); diagnostics and log records on stderr, in words.
- ``--version`` from the installed package's metadata; examples in ``--help`` (epilogs).
- A closed stdout (``… | head``) ends the command with one line on stderr and exit 1, not a traceback.

A command uses it like this::

    def main(argv=None) -> int:
        parser = console.ArgumentParser(prog="kantata-bridge", epilog=EXAMPLES)
        console.add_version(parser)
        ...
        return console.run_main("kantata-bridge", lambda: body(parser.parse_args(argv)))

and raises ``console.CliError`` (exit 2) or ``console.CliError(..., exit_code=console.EXIT_FAILED)`` anywhere
below; ``human_logging`` sends the bridge's log records to stderr as ``<tool>: warning: …`` lines.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, Final, NoReturn, TextIO

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2  # bad input or usage
EXIT_INTERRUPTED: Final = 130
DISTRIBUTION: Final = "kantata-bridge"


class CliError(Exception):
    """A failure the user can act on: reported as ``<tool>: error: <message>`` (plus ``hint`` on a second
    line) with ``exit_code`` (default 2, bad input). Raise it anywhere inside ``run_main``."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code


def error(tool: str, message: str, hint: str | None = None, *, stream: TextIO | None = None) -> None:
    """Print ``<tool>: error: <message>`` and, if given, the hint on a second line (stderr by default)."""
    out = stream if stream is not None else sys.stderr
    out.write(f"{tool}: error: {message}\n")
    if hint:
        out.write(f"{hint}\n")
    out.flush()


def note(tool: str, message: str, *, stream: TextIO | None = None) -> None:
    """A diagnostic line on stderr that is not an error: ``<tool>: <message>``."""
    out = stream if stream is not None else sys.stderr
    out.write(f"{tool}: {message}\n")
    out.flush()


def package_version() -> str:
    """The installed kantata-bridge version (from its metadata; "unknown" when run from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed)"


def add_version(parser: argparse.ArgumentParser) -> None:
    """``--version``: prints ``<prog> <version>`` on stdout and exits 0."""
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {package_version()}",
        help="show the version and exit",
    )


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's error format: a usage error is two lines (what is wrong, where help is),
    not the whole usage text; epilogs keep their line breaks (they hold examples)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        tool = self.prog.split()[0]
        error(tool, message, f"Try '{self.prog} --help'.")
        raise SystemExit(EXIT_USAGE)


def port_number(text: str) -> int:
    """argparse type for a TCP port: 0 (a free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 (any free port) to 65535; got {port}")
    return port


# The largest duration a command takes (about 31 years): any more overflows the platform's time_t.
_MAX_SECONDS: Final = 1e9


def positive_number(text: str) -> float:
    """argparse type for a duration or timeout in seconds: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= _MAX_SECONDS:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {_MAX_SECONDS:.0f}; got {text}")
    return value


_OUTPUT_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT})


def run_main(tool: str, body: Callable[[], int]) -> int:
    """Run a command's body and turn what can end it into the documented exit code, never a traceback.

    ``CliError`` → its message (and hint) and code; ``SystemExit`` (argparse, ``--help``) → its code;
    a closed stdout, or one that cannot be written (a full disk) → one line, exit 1; Ctrl-C → "interrupted",
    exit 130 (a command that treats Ctrl-C as its normal end, like ``serve``, catches it itself).
    """
    try:
        code = _run_body(tool, body)
        sys.stdout.flush()  # a closed pipe shows here, not as "Exception ignored" at interpreter exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        error(tool, "the output was closed before everything was written (broken pipe)")
        return EXIT_FAILED
    except OSError as exc:
        if exc.errno in _OUTPUT_ERRNOS:  # stdout on a full disk, /dev/full, a failing device
            _silence_stdout()
            error(tool, f"the output could not be written ({exc.strerror})")
        else:
            error(tool, f"failed: {exc.strerror or exc}")
        return EXIT_FAILED


def _run_body(tool: str, body: Callable[[], int]) -> int:
    try:
        return body()
    except CliError as exc:
        error(tool, exc.message, exc.hint)
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    except KeyboardInterrupt:
        note(tool, "interrupted")
        return EXIT_INTERRUPTED


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush does not fail again (Python's documented
    way to handle SIGPIPE: https://docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (e.g. captured by a test): nothing will be flushed at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


class HumanFormatter(logging.Formatter):
    """``<tool>: warning: Kantata call failed; retrying (status=503, attempt=1)``: a log record for a person."""

    _STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
        "message",
        "asctime",
        "taskName",
    }

    def __init__(self, tool: str) -> None:
        super().__init__()
        self.tool = tool

    def format(self, record: logging.LogRecord) -> str:
        from kantata_bridge_cli.diagnostics import retry_text

        retry = retry_text(record)  # the Kantata client's retry record: one sentence, not its fields
        if retry is not None:
            return f"{self.tool}: {record.levelname.lower()}: {retry}"
        extras = {
            k: v
            for k, v in vars(record).items()
            if k not in self._STANDARD and not k.startswith("_") and v is not None
        }
        text = record.getMessage()
        if extras:
            text += " (" + ", ".join(f"{k}={_short(v)}" for k, v in extras.items()) + ")"
        return f"{self.tool}: {record.levelname.lower()}: {text}"


def _short(value: object, limit: int = 120) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextlib.contextmanager
def human_logging(tool: str, level: int = logging.WARNING) -> Iterator[None]:
    """While inside, the bridge's log records from ``level`` up go to stderr as one line each for a person
    (``<tool>: warning: …``), and its JSON log lines (Powertools writes them to stdout, as Lambda wants) are
    held back, so stdout carries only the command's data. Other handlers and the logger's level are left as
    they are (the local stack listens on the same logger). Everything is put back on exit."""
    from kantata_bridge.observability import logger as bridge_logger

    std = logging.getLogger(bridge_logger.name)
    # Also held back: a handler whose stream is closed (one made while stdout was a stream since closed, as
    # in a test) would print "--- Logging error ---" and a traceback for every record.
    to_stdout = [h for h in std.handlers if _writes_to_stdout(h) or _stream_closed(h)]
    human = logging.StreamHandler(sys.stderr)
    human.setLevel(level)
    human.setFormatter(HumanFormatter(tool))
    for handler in to_stdout:
        std.removeHandler(handler)
    std.addHandler(human)
    try:
        yield
    finally:
        std.removeHandler(human)
        for handler in to_stdout:
            std.addHandler(handler)


def _stream_closed(handler: logging.Handler) -> bool:
    return bool(getattr(getattr(handler, "stream", None), "closed", False))


def _writes_to_stdout(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    if stream is None:
        return False
    if stream is sys.stdout or stream is sys.__stdout__:
        return True
    try:
        return bool(stream.fileno() == 1)
    except (AttributeError, OSError, ValueError):
        return False
