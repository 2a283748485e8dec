"""Adding trackers adds nothing to the receiver's cold start: GitLab and Linear code loads only when used.

Each check runs in a fresh interpreter (``sys.modules`` of the test process is shared with every other test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NEW_TRACKER_MODULES = (
    "kantata_bridge.trackers.gitlab",
    "kantata_bridge.trackers.gitlab_events",
    "kantata_bridge.trackers.linear",
    "kantata_bridge.trackers.linear_events",
    "kantata_bridge.trackers.standard_webhooks",
)

# Imports the receiver's handler module as Lambda does, serves one signed GitHub delivery with the default
# settings (ENABLED_TRACKERS unset) through in-memory fakes, and prints the answer and the bridge modules loaded.
SCRIPT = """
import importlib.util, json, sys
from pathlib import Path

root = Path(sys.argv[1])
spec = importlib.util.spec_from_file_location("receiver_app", root / "functions/webhook_receiver/app.py")
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
after_import = sorted(m for m in sys.modules if m.startswith("kantata_bridge"))

from kantata_bridge.receiver.credentials import StaticCredentials
from kantata_bridge.receiver.memory import MemoryDeliveryQueue
from kantata_bridge.receiver.service import Receiver
from kantata_bridge.receiver.settings import load_settings
from kantata_bridge.trackers.registry import ADAPTERS

settings = load_settings(ADAPTERS, {"QUEUE_URL": "memory://q", "WEBHOOK_SECRETS_NAME": "s"})
queue = MemoryDeliveryQueue()
receiver = Receiver(settings, ADAPTERS, StaticCredentials({"github": ["github-sample-secret"]}), queue)
app.default_receiver = lambda: receiver
event = json.loads((root / "events/apigw/github_issues_opened.json").read_text())
context = type("Context", (), {"function_name": "f", "memory_limit_in_mb": 256,
    "invoked_function_arn": "arn:aws:lambda:eu-west-1:1:function:f", "aws_request_id": "r"})()
response = app.lambda_handler(event, context)
print(json.dumps({
    "status": response["statusCode"],
    "queued": len(queue.envelopes),
    "after_import": after_import,
    "after_delivery": sorted(m for m in sys.modules if m.startswith("kantata_bridge")),
}))
"""


def run_receiver() -> dict[str, object]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("layers/bridge", ".")),
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_METRICS_NAMESPACE": "KantataBridge",
    }
    env.pop("ENABLED_TRACKERS", None)
    completed = subprocess.run(  # noqa: S603 - our own interpreter running our own script
        [sys.executable, "-c", SCRIPT, str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def test_serving_a_github_delivery_loads_no_gitlab_or_linear_module() -> None:
    # Given a fresh receiver process with the default trackers, When it imports and serves a GitHub delivery
    result = run_receiver()
    # Then the delivery was queued ...
    assert (result["status"], result["queued"]) == (202, 1)
    # ... and no module of the opt-in trackers was imported, neither at import nor while serving
    for phase in ("after_import", "after_delivery"):
        loaded = result[phase]
        assert isinstance(loaded, list)
        assert [m for m in NEW_TRACKER_MODULES if m in loaded] == [], phase
    # (the check can fail: the GitHub adapter itself is loaded by then)
    assert "kantata_bridge.trackers.github" in result["after_delivery"]  # type: ignore[operator]
