"""Run every benchmark module in this package that defines ``run()``: ``python -m benchmarks``.

``python -m benchmarks receiver`` runs only the named modules.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

# The runtime package lives in the layer folder; make it importable as the Lambda runtime would.
ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT / "layers" / "bridge", ROOT / "local", ROOT):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

FIRST = ("receiver",)


def module_names() -> list[str]:
    found = [
        info.name
        for info in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not info.name.startswith("_")
    ]
    return [name for name in FIRST if name in found] + sorted(name for name in found if name not in FIRST)


def main(argv: list[str]) -> int:
    names = argv or module_names()
    ran = 0
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        run = getattr(module, "run", None)
        if not callable(run):
            continue
        print(f"== benchmarks.{name}", flush=True)
        run()
        ran += 1
    if ran == 0:
        print("no benchmark module with a run() function found", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
