"""The README and docs agree with the repository and with each other where they drifted before: the demo's time,
the log-level variable, the config files they point to, and a .gitignore that ignores nothing tracked."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from kantata_bridge_dev.resources import load_template

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LOCAL_STACK = ROOT / "docs" / "local-stack.md"
# The docs this repository's CLI and local stack own (docs/catalog.md documents the catalog command).
DOCS = [README, *(ROOT / "docs" / name for name in ("deploy.md", "local-stack.md", "operations.md"))]
DOCS += [ROOT / "docs" / name for name in ("receiver.md", "worker.md", "kantata-sandbox.md")]


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_the_demo_time_is_one_figure_everywhere():
    figures = []
    for path in (README, LOCAL_STACK):
        figures += re.findall(r"\d+ deliveries in ([\d.]+) s", text(path))
    figures += re.findall(r"make demo .*\(about ([\d.]+) s\)", text(README))
    figures += re.findall(r"Output \(about ([\d.]+) s on a 2-core machine", text(LOCAL_STACK))
    assert len(figures) == 4
    assert len({float(f) for f in figures}) == 1, figures


def test_the_sample_demo_tables_fit_120_columns():
    for path in (README, LOCAL_STACK):
        block = text(path).split("Kantata status reports created\n", 1)[1].split("```", 1)[0]
        assert max(len(line) for line in block.splitlines()) <= 120, path


def test_the_log_level_variable_is_the_one_the_template_sets_and_powertools_reads_first():
    env = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert "POWERTOOLS_LOG_LEVEL" in env
    assert "POWERTOOLS_LOG_LEVEL" in text(README)
    for path in DOCS:
        for line in text(path).splitlines():
            if re.search(r"(?<![A-Z_])LOG_LEVEL", line):
                assert "legacy" in line, f"{path.name}: {line}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_config_file_the_docs_point_to_exists(path):
    # A repository path (``config/x.yaml``, also in ``file://config/x.yaml``), not the end of another path.
    named = set(re.findall(r"(?:(?<=file://)|(?<![\w./-]))(config/[\w.-]+\.(?:ya?ml|json))", text(path)))
    # config/catalog.yaml is the catalog command's default, the file the user makes (from the example or an
    # export); the command's own error points to config/catalog.example.yaml when it is missing.
    named.discard("config/catalog.yaml")
    missing = sorted(n for n in named if not (ROOT / n).is_file())
    assert missing == []


def test_the_routing_examples_the_docs_point_to_are_valid_routing_configs():
    from kantata_bridge.mapping.config import parse_config

    for name in ("config/routing.example.yaml", "config/local-routing.yaml"):
        parse_config((ROOT / name).read_text(encoding="utf-8"), name)
        assert yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))["routes"]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_gitignore_ignores_no_tracked_file():
    ignored = subprocess.run(
        ["git", "ls-files", "--cached", "--ignored", "--exclude-standard"],  # noqa: S607 - git from PATH
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert ignored == []
    assert (
        "events/generate.py"
        in subprocess.run(
            ["git", "ls-files", "events"],  # noqa: S607 - git from PATH
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    )
