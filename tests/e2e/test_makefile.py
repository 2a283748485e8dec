"""The Makefile a new user meets first: which Python it accepts, what `make demo` installs (and `make test` adds),
that `make serve ARGS=…` passes options, and that Ctrl-C ends `make serve` without an error from make.

Nothing here installs anything: interpreters are stand-in scripts, installs are dry runs (``make -n``), and the
commands that do run use the test's own virtualenv with its install stamp marked up to date (``make -o``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed"),
]

ROOT = Path(__file__).resolve().parents[2]


def make(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run make in its own process group, and end the whole group if it outlives ``timeout`` (a command that
    wrongly keeps running, e.g. a serve that ignored its arguments, must not outlive the test)."""
    process = subprocess.Popen(  # noqa: S603 - make with the Makefile of this repository
        ["make", "--no-print-directory", "-C", str(ROOT), *args],  # noqa: S607 - make from PATH
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # nothing it started outlives it
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def fake_python(path: Path, version: str) -> Path:
    """A stand-in interpreter that reports ``version`` (all the Makefile asks it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


def test_a_venv_made_with_another_python_is_refused_with_what_to_do(tmp_path):
    # Given a .venv made earlier with Python 3.11
    venv = tmp_path / "venv"
    fake_python(venv / "bin" / "python", "3.11")
    # When make demo runs
    result = make("demo", f"VENV={venv}")
    # Then it stops before installing anything and says to run make clean
    assert result.returncode != 0
    assert f"{venv} was made with Python 3.11, but kantata-bridge needs Python 3.12" in result.stderr
    assert "Run 'make clean'" in result.stderr
    assert sorted(p.name for p in venv.iterdir()) == ["bin"]


def test_a_python312_that_is_not_3_12_is_refused_and_no_venv_is_made(tmp_path):
    python = fake_python(tmp_path / "python3.11", "3.11")
    venv = tmp_path / "venv"
    result = make("demo", f"VENV={venv}", f"PYTHON312={python}")
    assert result.returncode != 0
    assert f"PYTHON312={python} is Python 3.11, but kantata-bridge needs Python 3.12" in result.stderr
    assert not venv.exists()


def test_demo_installs_only_the_demo_extra_and_test_then_installs_the_rest(tmp_path):
    # Given a fresh 3.12 venv
    venv = tmp_path / "venv"
    fake_python(venv / "bin" / "python", "3.12")
    # Then make demo installs the demo extra, not the development toolchain, and says so once
    demo = make("-n", "demo", f"VENV={venv}").stdout
    assert "-e '.[demo]'" in demo
    assert "[dev]" not in demo
    assert demo.count("Installing what the demo needs") == 1
    # And after the demo's install, make test installs the rest (the dev extra), and make demo nothing more
    (venv / ".installed-demo").touch()
    assert "-e '.[dev]'" in make("-n", "unit", f"VENV={venv}").stdout
    assert "pip" not in make("-n", "demo", f"VENV={venv}").stdout
    # And after the full install, neither installs again
    (venv / ".installed-dev").touch()
    assert "pip" not in make("-n", "unit", f"VENV={venv}").stdout


def this_venv() -> str:
    """The virtualenv running the tests, as the Makefile's VENV (skip if it has no kantata-bridge script)."""
    venv = Path(sys.prefix)
    if not (venv / "bin" / "kantata-bridge").exists():
        pytest.skip("the test's Python is not a virtualenv with the kantata-bridge command")
    return os.path.relpath(venv, ROOT) if venv.is_relative_to(ROOT) else str(venv)


def test_make_serve_passes_args_to_the_command():
    venv = this_venv()
    result = make("-o", f"{venv}/.installed-demo", "serve", f"VENV={venv}", "ARGS=--port 99999")
    assert "kantata-bridge: error: argument --port: a port is 0 (any free port) to 65535; got 99999" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_ctrl_c_ends_make_serve_with_exit_0_and_no_error_from_make(tmp_path):
    # Given make serve running in its own process group, as a terminal's foreground job
    venv = this_venv()
    process = subprocess.Popen(  # noqa: S603 - make with the Makefile of this repository
        [  # noqa: S607 - make from PATH
            "make",
            "--no-print-directory",
            "-C",
            str(ROOT),
            "-o",
            f"{venv}/.installed-demo",
            "serve",
            f"VENV={venv}",
            f"ARGS=--port 0 --log-file {tmp_path / 'serve.log'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # the banner's first line, once the stack is up
        assert "local stack is running" in first, first
        # When Ctrl-C is pressed (the terminal sends SIGINT to the whole foreground group: make and serve)
        os.killpg(process.pid, signal.SIGINT)
        try:
            _, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            # Still running: have Python print where every thread is (PYTHONFAULTHANDLER), then fail with it
            os.killpg(process.pid, signal.SIGABRT)
            _, err = process.communicate(timeout=10)
            raise AssertionError(f"serve did not stop within 60 s after Ctrl-C:\n{err[-6000:]}") from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # make and serve, whatever happened above
    # Then serve stops with exit 0, so make reports no error (make itself then ends by the same SIGINT, as
    # make does whenever it receives one; a shell shows nothing for that)
    assert process.returncode in (0, -signal.SIGINT), err
    assert "Error" not in err
    assert "Interrupt" not in err
    assert "stopped" in err
