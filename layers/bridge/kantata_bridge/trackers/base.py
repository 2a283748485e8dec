"""What every tracker adapter offers the receiver, and the pieces they share.

A tracker adapter knows one tracker's delivery conventions: which header carries the signature and how it
is computed, where the event type and the delivery id are, which headers are worth keeping. It knows
nothing about HTTP status codes, queues or Kantata. A tracker joins by implementing :class:`TrackerAdapter`
and registering in :mod:`kantata_bridge.trackers.registry` (GitHub, Jira, GitLab and Linear do).

Keep this module free of heavy imports: the receiver imports it on its cold-start path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple, Protocol

# Header names arrive lower-cased from API Gateway (HTTP API, payload v2); adapters match them that way.
Headers = Mapping[str, str]

# HMAC methods a "<method>=<hex>" signature header may name. SHA-1 is left out on purpose: GitHub's legacy
# X-Hub-Signature (sha1) is not accepted, and no supported tracker needs it.
_HMAC_METHODS: Final = frozenset({"sha256", "sha384", "sha512"})
# Most a signed timestamp may be ahead of the receiver's clock (seconds), whatever the tolerance for old ones.
_FUTURE_SKEW: Final = 300


class SignatureError(Exception):
    """The delivery is not authenticated: signature or token missing, malformed or wrong.

    ``reason`` is a short machine-readable word (``missing``, ``mismatch``, ``malformed``,
    ``unsupported_method``, ``no_secret``; for signed timestamps ``stale`` and ``future``) safe to log and
    answer with. The message never contains the
    signature, the token or a secret.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class MalformedDeliveryError(ValueError):
    """The delivery is authenticated but its body or headers cannot be understood (not JSON, no event type...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# NamedTuple rather than a dataclass for the small records on the receiver's path: building a dataclass
# costs ~0.6 ms of cold start each, a NamedTuple ~0.1 ms (measured), and these are plain immutable values.
class DeliveryIdentity(NamedTuple):
    """What the receiver needs from a verified delivery: the event type and the ids to deduplicate on.

    ``delivery_id_source`` says whether the id came from the tracker's header (``header``) or was
    computed as a stable fallback (``fallback``).
    """

    event_type: str
    delivery_id: str
    hook_id: str | None = None
    delivery_id_source: str = "header"


class TrackerAdapter(Protocol):
    """One tracker's delivery conventions.

    ``verify_signature`` runs on the exact raw bytes before anything parses them; ``identify`` runs after.
    """

    @property
    def name(self) -> str:
        """The tracker's path segment and configuration prefix (``github`` → ``GITHUB_AUTH_MODE``)."""
        ...

    @property
    def default_events(self) -> frozenset[str]:
        """Event types queued unless the operator configures another set."""
        ...

    @property
    def ping_events(self) -> frozenset[str]:
        """Event types that only check the hook works: answered 200, never queued."""
        ...

    @property
    def kept_headers(self) -> tuple[str, ...]:
        """Lower-cased header names copied into the envelope (signature and delivery headers)."""
        ...

    @property
    def default_auth_mode(self) -> str:
        """``<TRACKER>_AUTH_MODE`` when unset: ``signature`` (an HMAC over the body) or ``shared-token``."""
        ...

    @property
    def default_token_header(self) -> str | None:
        """Lower-cased header of the tracker's own shared token (GitLab ``x-gitlab-token``), or None: then
        ``shared-token`` mode reads the bridge's ``X-Bridge-Token`` unless ``<TRACKER>_TOKEN_HEADER`` says."""
        ...

    @property
    def default_signature_tolerance(self) -> int | None:
        """Seconds a signed timestamp may be off the receiver's clock (replay protection), or None when the
        tracker signs no timestamp. ``<TRACKER>_SIGNATURE_TOLERANCE_SECONDS`` overrides it (0: not checked)."""
        ...

    def verify_signature(
        self,
        headers: Headers,
        body: bytes,
        secrets: Sequence[str],
        *,
        now: float | None = None,
        tolerance: int | None = None,
    ) -> None:
        """Check the delivery's signature over ``body`` against any of ``secrets``.

        ``now`` (epoch seconds) and ``tolerance`` (seconds; None or 0: not checked) are for trackers that
        sign a timestamp: a delivery signed further than ``tolerance`` from ``now`` is refused (reason
        ``stale``). Raises SignatureError when the header is missing or malformed or no secret matches.
        """
        ...

    def identify(self, headers: Headers, body: bytes) -> DeliveryIdentity:
        """Read event type and delivery id (with a stable fallback). Raises MalformedDeliveryError."""
        ...


def verify_hub_signature(
    header_value: str | None, body: bytes, secrets: Sequence[str], header_name: str
) -> None:
    """Check a WebSub-style ``<method>=<hex HMAC of body>`` header against every active secret.

    Several secrets may be active at once so a secret can be rotated without downtime; each is compared in
    constant time (``hmac.compare_digest``) and all are tried, so timing tells nothing about which matched.

    Raises SignatureError (reason ``missing``, ``malformed``, ``unsupported_method``, ``no_secret``,
    ``mismatch``); its message names the header but never its value.
    """
    if not header_value:
        raise SignatureError("missing", f"signature header {header_name} is missing")
    method, sep, digest = header_value.strip().partition("=")
    method = method.strip().lower()
    if not sep or not digest:
        raise SignatureError("malformed", f"signature header {header_name} is not '<method>=<hex>'")
    if method not in _HMAC_METHODS:
        # Never echo the method back verbatim: it is attacker-chosen text.
        raise SignatureError(
            "unsupported_method", f"signature header {header_name} names an unsupported method"
        )
    if not secrets:
        raise SignatureError("no_secret", "no active secret is configured for this tracker")
    given = digest.strip().lower().encode("ascii", "replace")
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode("utf-8"), body, method).hexdigest().encode("ascii")
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise SignatureError("mismatch", f"signature in {header_name} does not match any active secret")


def verify_shared_token(header_value: str | None, tokens: Sequence[str], header_name: str) -> None:
    """Check a static shared-token header (for senders that cannot sign, e.g. Jira Automation).

    Weaker than a signature: the token travels with every request and does not cover the body.
    Raises SignatureError (reason ``missing``, ``no_secret`` or ``mismatch``).
    """
    if not header_value:
        raise SignatureError("missing", f"token header {header_name} is missing")
    if not tokens:
        raise SignatureError("no_secret", "no shared token is configured for this tracker")
    # surrogatepass: a header value with lone surrogates (only a forger sends one) must compare unequal, not
    # fail to encode; every configured token is valid text, so no such value can match.
    given = hashlib.sha256(header_value.strip().encode("utf-8", "surrogatepass")).digest()
    matched = False
    for token in tokens:
        # Compare digests, not the tokens: equal lengths, so the timing does not even tell the token's length.
        matched |= hmac.compare_digest(hashlib.sha256(token.encode("utf-8")).digest(), given)
    if not matched:
        raise SignatureError("mismatch", f"token in {header_name} does not match any active token")


def check_signed_time(signed_at: float, now: float | None, tolerance: int | None, what: str) -> None:
    """Refuse a signed timestamp (epoch seconds) too far from ``now`` (replay protection).

    Older than ``tolerance`` seconds → SignatureError ``stale``; ahead of ``now`` by more than
    ``min(tolerance, 300)`` seconds → ``future`` (a sender's clock may run a little fast, never hours, so a wide
    window kept for late retries does not also admit far-future stamps). ``now`` or ``tolerance`` None or 0:
    not checked. ``what`` names the timestamp in the message (never its value).
    """
    if now is None or not tolerance:
        return
    if signed_at < now - tolerance:
        raise SignatureError("stale", f"{what} is more than {tolerance} s old")
    if signed_at > now + min(tolerance, _FUTURE_SKEW):
        raise SignatureError("future", f"{what} is ahead of the receiver's clock")


def parse_json_object(text: bytes | str) -> dict[str, Any]:
    """Parse a JSON document that must be an object. Raises MalformedDeliveryError (``not_json``)."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError and undecodable bytes; RecursionError very deep nesting.
        raise MalformedDeliveryError("not_json", "body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise MalformedDeliveryError("not_json", "body is not a JSON object")
    return doc


def fallback_delivery_id(*parts: object) -> str:
    """A stable delivery id from the parts that identify one version of one object: ``sha256:<hex>``."""
    canonical = json.dumps(list(parts), separators=(",", ":"), sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def header_text(headers: Headers, name: str, limit: int = 256) -> str | None:
    """A header's value, stripped, or None when absent, blank, longer than ``limit`` or not printable ASCII.

    Ids, event types and the headers kept in the envelope go through here: an odd value (control
    characters, lone surrogates, non-ASCII, kilobytes of text) counts as missing, so it can neither break
    the SQS message (which refuses control characters and has a size limit) nor reach a log line.
    """
    value = headers.get(name)
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > limit or not (value.isascii() and value.isprintable()):
        return None
    return value
