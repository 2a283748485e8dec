"""The layer's requirements.txt is generated from pyproject.toml and must not drift from it."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "layer_requirements", ROOT / "scripts/layer_requirements.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_layer_requirements_match_pyproject() -> None:
    expected = _generator().layer_requirements()
    assert (ROOT / "layers/bridge/requirements.txt").read_text() == expected, "run `make layer-requirements`"


def test_layer_requirements_leave_out_what_the_lambda_runtime_provides() -> None:
    text = _generator().layer_requirements()
    assert "boto3" not in text
    assert "aws-lambda-powertools" in text
