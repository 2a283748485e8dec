"""Standard Webhooks signatures (https://www.standardwebhooks.com, spec 1.0.0), as GitLab's signing token sends them.

Headers: ``webhook-id`` (the message id), ``webhook-timestamp`` (integer epoch seconds of the attempt) and
``webhook-signature``: a space-separated list of ``<version>,<base64 signature>``; ``v1`` is HMAC-SHA256 over
``{id}.{timestamp}.{body}``. The key is the base64-decoded part of the secret after its ``whsec_`` prefix.
Several signatures per header (the sender rotating its key) and several active secrets (us rotating ours) are
both tried, each comparison in constant time.

Written by hand rather than taken from the ``standardwebhooks`` package: that package verifies against one
secret and reads the wall clock itself, while the receiver needs several secrets, an injected clock, a
configurable tolerance and refusal reasons it can answer with; the scheme is a dozen lines of ``hmac``.
Imported only by adapters that use it, never on the receiver's cold start.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from typing import Final

from kantata_bridge.trackers.base import Headers, SignatureError, check_signed_time, header_text

ID_HEADER: Final = "webhook-id"
TIMESTAMP_HEADER: Final = "webhook-timestamp"
SIGNATURE_HEADER: Final = "webhook-signature"
SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the prefix of a secret, not a secret
# The spec's reference libraries refuse attempts more than 5 minutes off the receiver's clock.
DEFAULT_TOLERANCE: Final = 300
# A header listing more signatures than this is not a key rotation; the rest are not tried (bounded work).
_MAX_SIGNATURES: Final = 10


def signing_key(secret: str) -> bytes | None:
    """The HMAC key of a ``whsec_<base64>`` secret (the prefix is optional), or None when it is not base64."""
    text = secret.strip()
    if text.startswith(SECRET_PREFIX):
        text = text[len(SECRET_PREFIX) :]
    try:
        # Unpadded base64 is common in copied secrets; extra padding is ignored by the decoder.
        key = base64.b64decode(text + "==", validate=False)
    except (binascii.Error, ValueError):
        return None
    return key or None


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature a sender puts in ``webhook-signature`` (for tests and sample events).

    Raises ValueError when the secret is not ``whsec_<base64>``.
    """
    key = signing_key(secret)
    if key is None:
        raise ValueError("the secret is not whsec_<base64>")
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(
    headers: Headers,
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float | None = None,
    tolerance: int | None = None,
) -> None:
    """Check a Standard Webhooks delivery: a ``v1`` signature by one of ``secrets``, then its timestamp.

    The signature is checked first, so ``stale`` always means a genuine delivery that arrived too late (or
    was replayed). Raises SignatureError: ``missing`` (a header absent), ``malformed`` (timestamp not an
    integer), ``unsupported_method`` (no ``v1`` signature), ``no_secret`` (no usable ``whsec_`` secret),
    ``mismatch``, ``stale`` or ``future`` (see check_signed_time). Messages never carry a value.
    """
    message_id = header_text(headers, ID_HEADER)
    raw_timestamp = header_text(headers, TIMESTAMP_HEADER, limit=20)
    signature_header = header_text(headers, SIGNATURE_HEADER, limit=2048)
    if message_id is None or raw_timestamp is None or signature_header is None:
        raise SignatureError(
            "missing", "headers webhook-id, webhook-timestamp and webhook-signature are all required"
        )
    if not raw_timestamp.isdigit():
        raise SignatureError("malformed", "header webhook-timestamp is not whole epoch seconds")
    given: list[bytes] = []
    for item in signature_header.split()[:_MAX_SIGNATURES]:
        version, sep, value = item.partition(",")
        if not sep or version != "v1":
            continue  # another scheme (v1a: asymmetric) or junk: not ours to check
        try:
            given.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not given:
        raise SignatureError("unsupported_method", "header webhook-signature holds no v1 signature")
    keys = [key for key in (signing_key(s) for s in secrets) if key is not None]
    if not keys:
        raise SignatureError("no_secret", "no whsec_ signing secret is configured for this tracker")
    message = f"{message_id}.{raw_timestamp}.".encode() + body
    matched = False
    for key in keys:
        expected = hmac.new(key, message, hashlib.sha256).digest()
        for signature in given:
            matched |= hmac.compare_digest(expected, signature)
    if not matched:
        raise SignatureError("mismatch", "webhook-signature does not match any active signing secret")
    check_signed_time(int(raw_timestamp), now, tolerance, "webhook-timestamp")
