"""The template passes cfn-lint (what `sam validate --lint` runs), so a deploy does not fail on a typo."""

from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.api import lint_file

pytestmark = pytest.mark.integration

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"


def test_template_has_no_cfn_lint_finding():
    # Given the deployable template, When cfn-lint checks it (SAM transform included)
    matches = lint_file(TEMPLATE_PATH)
    # Then there is nothing to report, not even informational rules
    assert [f"{m.rule.id} {m.linenumber}: {m.message}" for m in matches] == []
