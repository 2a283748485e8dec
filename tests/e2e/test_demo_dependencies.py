"""`make demo` installs only the runtime and the "demo" extra (not the development toolchain), so the demo must
import nothing else: every package it loads has to come from those requirements."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
LIST_MODULES = "import json, sys; print(json.dumps(sorted({m.split('.')[0] for m in list(sys.modules)})))"


def installed_by(requirements: list[str]) -> set[str]:
    """Every distribution the requirements pull in, following each one's own requirements and extras."""
    found: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        found.add(key[0])
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue
        for raw in requires:
            dep = Requirement(raw)
            extras = set(req.extras) | {""}
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in extras):
                todo.append(dep)
    return found


def imported_by(code: str, *args: str) -> list[str]:
    result = subprocess.run(  # noqa: S603 - this interpreter, with our own code
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_demo_runs_with_only_what_the_demo_extra_installs(tmp_path):
    # Given the requirements `make demo` installs (the runtime dependencies and the demo extra), and every
    # other package of this (full development) environment made unimportable, as in a demo-only venv
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    allowed = installed_by([*project["dependencies"], *project["optional-dependencies"]["demo"]])
    allowed |= {"kantata-bridge", "pip"}
    at_start = set(imported_by(LIST_MODULES))
    blocked = sorted(
        module
        for module, owners in metadata.packages_distributions().items()
        if module not in at_start and not {canonicalize_name(d) for d in owners} & allowed
    )
    assert "mypy" in blocked  # the development toolchain is really out of reach
    assert "samcli" in blocked
    # When the demo runs in a fresh interpreter
    demo = (
        "import importlib.machinery, json, sys\n"
        "blocked = set(json.loads(sys.argv[2]))\n"
        "class NotInstalled(importlib.machinery.PathFinder):  # as if those packages were not installed\n"
        "    @classmethod\n"
        "    def find_spec(cls, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in blocked: return None\n"
        "        return super().find_spec(name, path, target)\n"
        "sys.meta_path[:] = [NotInstalled if f is importlib.machinery.PathFinder else f for f in sys.meta_path]\n"
        "from kantata_bridge_cli.main import main\n"
        "code = main(['demo', '--log-file', sys.argv[1]])\n"
        "assert code == 0, code\n" + LIST_MODULES
    )
    modules = imported_by(demo, str(tmp_path / "demo.log"), json.dumps(blocked))
    # Then it completes (exit 0), having loaded none of them
    assert "moto" in modules
    assert set(modules) & set(blocked) == set()
