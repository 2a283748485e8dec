"""The sync worker: SQS records → idempotency → ordering guard → Kantata status report → recorded outcome.

``processor`` holds the per-record flow, ``ordering`` the version guard, ``outcomes`` the durable outcome
records, ``idempotency`` the Powertools persistence layer, ``settings`` the environment, ``claim_check`` the
S3 body fetch. The Lambda entry point (functions/sync_worker/app.py) only wires these together.
"""
