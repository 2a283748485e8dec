"""Fetch a claim-checked delivery body from S3 and check it against the envelope's pointer."""

from __future__ import annotations

import hashlib
from typing import Any

from kantata_bridge.envelope import DeliveryEnvelope


class ClaimCheckError(Exception):
    """The body could not be fetched or does not match its pointer. ``retryable`` says if trying later may help
    (S3 throttling or an outage) or not (the object is gone or corrupt: the delivery is parked)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


_GONE = frozenset({"NoSuchKey", "NoSuchBucket", "404", "AccessDenied", "403"})


def fetch_body(envelope: DeliveryEnvelope, s3_client: Any) -> DeliveryEnvelope:
    """The envelope with its body inline: unchanged if it already is, else read from S3 and verified
    (size and SHA-256). Raises ClaimCheckError."""
    pointer = envelope.body_pointer
    if envelope.body is not None or pointer is None:
        return envelope
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        resp = s3_client.get_object(Bucket=pointer.bucket, Key=pointer.key)
        body = resp["Body"].read()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        raise ClaimCheckError(
            f"claim-checked body s3://{pointer.bucket}/{pointer.key}: {code or 'error'}",
            retryable=code not in _GONE,
        ) from None
    except BotoCoreError as exc:
        raise ClaimCheckError(f"claim-checked body: {type(exc).__name__}", retryable=True) from None
    if len(body) != pointer.size or hashlib.sha256(body).hexdigest() != pointer.sha256:
        raise ClaimCheckError("claim-checked body does not match its size/SHA-256", retryable=False)
    return envelope.with_body(body)
