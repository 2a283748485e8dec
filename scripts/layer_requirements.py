"""Print the Lambda layer's requirements.txt, generated from pyproject.toml (the one source of dependencies).

boto3 (and botocore) are left out: the Lambda Python runtime provides them, and shipping a second copy
would add megabytes to every cold start. ``make layer-requirements`` writes the output to
layers/bridge/requirements.txt; a unit test checks the committed file matches.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PROVIDED_BY_RUNTIME = {"boto3", "botocore"}
ROOT = Path(__file__).resolve().parent.parent


def layer_requirements(pyproject: Path = ROOT / "pyproject.toml") -> str:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    kept = [d for d in deps if re.split(r"[\s<>=!~\[;]", d, maxsplit=1)[0].lower() not in PROVIDED_BY_RUNTIME]
    header = "# Generated from pyproject.toml by scripts/layer_requirements.py: do not edit by hand.\n"
    return header + "".join(f"{d}\n" for d in kept)


if __name__ == "__main__":
    sys.stdout.write(layer_requirements())
