"""Webhook receiver Lambda: API Gateway HTTP API (payload 2.0), route ``POST /webhooks/{tracker}``.

Verifies a tracker's signed delivery and queues it on SQS within milliseconds; the logic lives in
``kantata_bridge.receiver`` (``http.py`` turns the event into a request and every refusal into its status).
Every answer is a small JSON document, never a stack trace.
"""

from __future__ import annotations

import gc

# Importing boto3 and this package only builds objects that live as long as the process, so a collection
# during init finds no garbage: it only walks the ever-growing heap. Collect nothing until the imports are
# done and frozen (below); see docs/receiver.md for the measurement.
_GC_WAS_ENABLED = gc.isenabled()
gc.disable()

from typing import Any  # noqa: E402 - after gc.disable() on purpose

# Every delivery past the path check needs boto3 (Secrets Manager, SQS), so import it during init, before
# gc.freeze() below. Clients are still built on the first request (nothing time-bound is cached in init,
# so a SnapStart snapshot holds no secret, connection or clock reading).
import boto3  # noqa: E402, F401
from kantata_bridge.receiver.http import after_restore, handle  # noqa: E402
from kantata_bridge.receiver.service import default_receiver  # noqa: E402

# Lambda SnapStart (the ReceiverSnapStart template parameter) resumes new environments from a snapshot of this
# init. Lambda's Python runtimes ship the hook library; anywhere else (tests, the local stack, benchmarks) the
# import fails at once and nothing is registered. Without SnapStart the hook is registered and never runs.
try:
    from snapshot_restore_py import register_after_restore
except ImportError:
    pass
else:
    register_after_restore(after_restore)

# What was imported lives as long as the process. Freezing it spares the garbage collector from scanning
# those objects again while boto3 loads its service models on the first request. Then collect as before.
gc.freeze()
if _GC_WAS_ENABLED:
    gc.enable()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # default_receiver is looked up here, on each call, so tests can replace it on this module.
    return handle(event, context, default_receiver)
