"""Why the receiver refused or could not take a delivery.

Each error carries a short ``reason`` (safe to log and to answer with) and the ``metric`` it is counted
under. The HTTP status for each class is decided in one place: ``STATUS_BY_ERROR`` in
kantata_bridge/receiver/http.py. Tracker-side errors (bad signature, malformed body) live in
:mod:`kantata_bridge.trackers.base`. No message ever contains a secret, token or signature.
"""

from __future__ import annotations


class ReceiverError(Exception):
    """Base class: a delivery the receiver did not queue."""

    metric = "Rejected"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class UnknownTrackerError(ReceiverError):
    """The URL names a tracker the bridge does not know or has not enabled."""

    metric = "RejectedUnknownTracker"


class PayloadTooLargeError(ReceiverError):
    """The body is larger than the receiver accepts."""

    metric = "RejectedTooLarge"


class BadEncodingError(ReceiverError):
    """The body cannot be turned back into the bytes the tracker sent (bad base64, bad text)."""

    metric = "RejectedMalformed"


class EnqueueError(ReceiverError):
    """The queue (or the claim-check bucket) did not take the delivery: the tracker should retry."""

    metric = "EnqueueFailed"


class CredentialsUnavailableError(ReceiverError):
    """The secrets to verify the delivery could not be read (Secrets Manager down, entry missing or invalid)."""

    metric = "CredentialsUnavailable"


class ConfigurationError(ReceiverError):
    """An environment setting is missing or invalid; fix the deployment."""

    metric = "ConfigurationError"
