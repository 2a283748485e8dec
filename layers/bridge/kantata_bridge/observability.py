"""The one place that owns the Powertools Logger and Metrics instances.

Both are cheap to build and read their settings (POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE,
POWERTOOLS_LOG_LEVEL) from the environment. Import them from here so every module logs and counts through
the same objects.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "kantata-bridge")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "KantataBridge")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
