"""The receiver is safe to snapshot (Lambda SnapStart): init caches nothing unique or time-bound, and a restore
starts an environment afresh through the runtime hook the handler module registers.

Lambda snapshots the memory of a version's init (importing the handler module) and resumes every new execution
environment from it, so whatever init leaves behind is shared by all of them. Each check runs in a fresh
interpreter, as Lambda's init does (``sys.modules`` of the test process is shared with every other test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Imports the handler module as Lambda's init does and reports what the process holds afterwards.
HOLDINGS = """
import gc, importlib.util, json, sys
from pathlib import Path

root = Path(sys.argv[1])
spec = importlib.util.spec_from_file_location("receiver_app", root / "functions/webhook_receiver/app.py")
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)

import boto3, botocore.client, botocore.credentials, botocore.session, socket, ssl
import urllib3.connectionpool
from kantata_bridge.receiver import service
from kantata_bridge.receiver.clients import AwsClients
from kantata_bridge.receiver.credentials import SecretsManagerCredentials

HELD = {
    "boto3 session": boto3.session.Session,
    "botocore session": botocore.session.Session,
    "AWS client": botocore.client.BaseClient,
    "AWS credentials": botocore.credentials.Credentials,
    "connection pool": urllib3.connectionpool.ConnectionPool,
    "socket": socket.socket,
    "TLS context": ssl.SSLContext,
    "receiver clients": AwsClients,
    "webhook secrets": SecretsManagerCredentials,
    "receiver": service.Receiver,
}

def held():
    gc.unfreeze()  # the handler module freezes what init built, and gc.get_objects() skips frozen objects
    objects = gc.get_objects()
    return sorted({name for name, cls in HELD.items() for o in objects if isinstance(o, cls)})

after_init = {
    "cached_receivers": service.default_receiver.cache_info().currsize,
    "default_boto3_session": boto3.DEFAULT_SESSION is not None,
    "held": held(),
    "hook_library_loaded": "snapshot_restore_py" in sys.modules,
}
# What a first request builds, found by the same scan (so the scan above could have found it at init).
service.default_receiver()._queue._clients.client("sqs")
print(json.dumps({"after_init": after_init, "after_first_request": held()}))
"""

# Fingerprints the module-level state init leaves in the bridge's modules (and in a control module holding a
# clock reading and a random id, which must differ from one process to the next).
FINGERPRINT = """
import importlib.util, json, re, sys, time, types, uuid
from pathlib import Path

root = Path(sys.argv[1])
spec = importlib.util.spec_from_file_location("receiver_app", root / "functions/webhook_receiver/app.py")
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)

def canonical(value, depth=0):
    if depth > 4:
        return "..."
    if isinstance(value, dict):
        return sorted((canonical(k, depth + 1), canonical(v, depth + 1)) for k, v in value.items())
    if isinstance(value, (set, frozenset)):
        return sorted(canonical(v, depth + 1) for v in value)
    if isinstance(value, (list, tuple)):
        return [canonical(v, depth + 1) for v in value]
    if type(value).__module__.startswith("kantata_bridge") and hasattr(value, "__dict__"):
        return [type(value).__qualname__, canonical(vars(value), depth + 1)]
    return re.sub(r" at 0x[0-9a-f]+", "", repr(value))

def state(module):
    return sorted(
        (name, canonical(value))
        for name, value in vars(module).items()
        if not name.startswith("__")
        and not isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type))
        and not callable(getattr(value, "cache_info", None))
    )

control = types.ModuleType("control")
control.STARTED = time.time_ns()
control.INSTANCE = uuid.uuid4()
modules = {name: m for name, m in sys.modules.items() if name.startswith("kantata_bridge")}
modules["receiver_app"] = app
print(json.dumps({
    "bridge": {name: state(m) for name, m in sorted(modules.items())},
    "control": state(control),
}))
"""

# Imports the handler module with a stand-in hook library on the path, serves deliveries and runs the hooks the
# way the runtime does after a restore.
HOOKS = """
import importlib.util, io, json, random, sys
from contextlib import redirect_stdout
from pathlib import Path

root = Path(sys.argv[1])
spec = importlib.util.spec_from_file_location("receiver_app", root / "functions/webhook_receiver/app.py")
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)

import snapshot_restore_py
from kantata_bridge.receiver import service
from kantata_bridge.receiver.credentials import StaticCredentials
from kantata_bridge.receiver.memory import MemoryDeliveryQueue
from kantata_bridge.receiver.settings import load_settings
from kantata_bridge.trackers.registry import ADAPTERS

registered = {
    "after_restore": [f"{f.__module__}.{f.__qualname__}" for f, _, _ in snapshot_restore_py.get_after_restore()],
    "before_snapshot": [f"{f.__module__}.{f.__qualname__}" for f, _, _ in snapshot_restore_py.get_before_snapshot()],
}

def restore():
    for func, args, kwargs in snapshot_restore_py.get_after_restore():
        func(*args, **kwargs)

settings = load_settings(ADAPTERS, {"QUEUE_URL": "memory://q", "WEBHOOK_SECRETS_NAME": "s"})
queue = MemoryDeliveryQueue()
memory_receiver = service.Receiver(settings, ADAPTERS, StaticCredentials({"github": ["github-sample-secret"]}), queue)
app.default_receiver = lambda: memory_receiver
event = json.loads((root / "events/apigw/github_issues_opened.json").read_text())
context = type("Context", (), {"function_name": "f", "memory_limit_in_mb": 256,
    "invoked_function_arn": "arn:aws:lambda:eu-west-1:1:function:f", "aws_request_id": "r"})()

def cold_start():
    out = io.StringIO()
    with redirect_stdout(out):
        assert app.lambda_handler(event, context)["statusCode"] == 202
    (line,) = [json.loads(l) for l in out.getvalue().splitlines() if '"delivery queued"' in l]
    return line["cold_start"]

logged = [cold_start(), cold_start()]
service.default_receiver()  # the receiver wired to AWS, as a first request builds it (no AWS call yet)
cached_before = service.default_receiver.cache_info().currsize
restore()
cached_after = service.default_receiver.cache_info().currsize
logged += [cold_start(), cold_start()]

# Two environments resumed from one snapshot: the same generator state, then each one's hooks.
snapshot = random.getstate()
draws = {}
for name, hooks in (("without_hooks", lambda: None), ("with_hooks", restore)):
    first = []
    for _ in range(2):
        random.setstate(snapshot)
        hooks()
        first.append(random.random())
    draws[name] = first
print(json.dumps({"registered": registered, "cold_start_logged": logged, "cached_receivers": [cached_before,
    cached_after], "draws": draws}))
"""

STAND_IN_HOOK_LIBRARY = '''"""Stand-in for Lambda's snapshot_restore_py: the same registration functions, recording what is registered."""
_before_snapshot = []
_after_restore = []


def register_before_snapshot(func, *args, **kwargs):
    _before_snapshot.append((func, args, kwargs))
    return func


def register_after_restore(func, *args, **kwargs):
    _after_restore.append((func, args, kwargs))
    return func


def get_before_snapshot():
    return list(_before_snapshot)


def get_after_restore():
    return list(_after_restore)
'''


def run(script: str, *extra_path: Path, hash_seed: str = "0") -> dict[str, object]:
    """Run ``script`` in a fresh interpreter configured as the receiver's Lambda (no network: fake credentials)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*map(str, extra_path), str(ROOT / "layers/bridge"), str(ROOT)]),
        "PYTHONHASHSEED": hash_seed,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # a placeholder: botocore needs one to build a client
        "AWS_EC2_METADATA_DISABLED": "true",
        "QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/events",
        "WEBHOOK_SECRETS_NAME": "webhook-secrets",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    env.pop("ENABLED_TRACKERS", None)
    completed = subprocess.run(  # noqa: S603 - our own interpreter running our own script
        [sys.executable, "-c", script, str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def test_init_holds_no_secret_client_connection_or_receiver() -> None:
    # Given a fresh process, When it imports the receiver's handler module as Lambda's init does
    result = run(HOLDINGS)
    # Then nothing a snapshot must not share was built: no cached receiver, no boto3 session or client, no
    # credentials, socket, TLS context or connection pool, no webhook secrets
    assert result["after_init"] == {
        "cached_receivers": 0,
        "default_boto3_session": False,
        "held": [],
        "hook_library_loaded": False,  # outside Lambda the guarded import leaves nothing behind
    }
    # And the scan does find them once a request has built them (the check above can fail)
    assert {"AWS client", "AWS credentials", "botocore session", "boto3 session", "receiver"} <= set(
        result["after_first_request"]  # type: ignore[arg-type]
    )


def test_init_leaves_no_clock_reading_or_random_value_in_module_state() -> None:
    # Given two processes started at different times with different hash seeds
    first = run(FINGERPRINT, hash_seed="1")
    second = run(FINGERPRINT, hash_seed="2")
    # When each imports the handler module and fingerprints every bridge module's state
    # Then the state is the same: nothing in it depends on when or where init ran
    assert first["bridge"] == second["bridge"]
    assert "kantata_bridge.receiver.http" in first["bridge"]  # type: ignore[operator]
    # And the fingerprint tells apart state that does (a clock reading and a random id)
    assert first["control"] != second["control"]


@pytest.fixture
def stand_in_hook_library(tmp_path: Path) -> Path:
    (tmp_path / "snapshot_restore_py.py").write_text(STAND_IN_HOOK_LIBRARY, encoding="utf-8")
    return tmp_path


def test_a_restore_starts_the_environment_afresh(stand_in_hook_library: Path) -> None:
    # Given the Lambda runtime's hook library (a stand-in with its registration functions)
    # When the handler module is imported, deliveries are served and the runtime runs the after-restore hooks
    result = run(HOOKS, stand_in_hook_library)
    # Then one after-restore hook was registered at init, and nothing before the snapshot
    assert result["registered"] == {
        "after_restore": ["kantata_bridge.receiver.http.after_restore"],
        "before_snapshot": [],
    }
    # And the first invocation after the restore logs a cold start again
    assert result["cold_start_logged"] == [True, False, True, False]
    # And a receiver built before the restore (its credentials and connections) is dropped
    assert result["cached_receivers"] == [1, 0]
    # And two environments resumed from one snapshot no longer draw the same random numbers (they would without it)
    draws = result["draws"]
    assert isinstance(draws, dict)
    assert draws["without_hooks"][0] == draws["without_hooks"][1]
    assert draws["with_hooks"][0] != draws["with_hooks"][1]
