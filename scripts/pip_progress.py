"""Run ``pip`` with a short progress report instead of pip's page of output (used by the Makefile).

    python scripts/pip_progress.py --log .venv/pip-install.log -- install -e '.[demo]'

pip prints three or four lines per package, or nothing at all with ``--quiet``; a first ``make demo`` should say
what it is doing without burying the demo under 150 lines. pip has no compact progress mode, hence these few
lines: one progress line (rewritten in place on a terminal, every ten packages elsewhere), pip's whole output
kept in ``--log``, and its last lines shown if pip fails. Standard library only: it runs before anything is
installed. The exit code is pip's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import deque


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pip with a one-line progress report")
    parser.add_argument("--log", required=True, help="file for pip's whole output")
    parser.add_argument("pip_args", nargs=argparse.REMAINDER, help="-- then pip's arguments")
    args = parser.parse_args(argv)
    pip_args = args.pip_args[1:] if args.pip_args[:1] == ["--"] else args.pip_args
    live = sys.stdout.isatty()
    started = time.monotonic()
    seen = 0
    tail: deque[str] = deque(maxlen=30)

    def show(text: str, *, every: bool = True) -> None:
        if live:
            sys.stdout.write("\r\033[K" + text)
        elif every:
            sys.stdout.write(text + "\n")
        sys.stdout.flush()

    with open(args.log, "w", encoding="utf-8") as log:
        pip = subprocess.Popen(  # noqa: S603 - pip of this interpreter, with the Makefile's arguments
            [sys.executable, "-m", "pip", *pip_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert pip.stdout is not None
        for line in pip.stdout:
            log.write(line)
            tail.append(line)
            if line.startswith(("Collecting ", "Requirement already satisfied: ")):
                seen += 1
                name = line.split(": ", 1)[-1] if line.startswith("Req") else line.split(" ", 2)[1]
                show(f"  resolving: {seen} packages ({name.split()[0]})", every=seen % 10 == 0)
            elif line.startswith("Installing collected packages:"):
                count = len(line.split(":", 1)[1].split(","))
                show(f"  installing {count} packages ...")
        code = pip.wait()
    elapsed = time.monotonic() - started
    if live:
        sys.stdout.write("\r\033[K")
    if code != 0:
        sys.stderr.write("".join(tail))
        sys.stderr.write(f"error: pip failed (exit {code}); its whole output is in {args.log}\n")
        return code
    sys.stdout.write(f"  done in {elapsed:.0f} s (pip's output: {args.log})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
