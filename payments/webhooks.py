"""Webhook signatures, retry schedule and subscription checks (API.md, Webhooks). Pure.

A delivery carries ``Corridor-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]``: each ``v1`` is
HMAC-SHA256 under one endpoint secret over ``"<t>." + raw body``. While a secret is rotated both
the old and the new secret sign, so a receiver holding either one keeps verifying. The timestamp
is signed too, and receivers refuse old ones, so a captured delivery cannot be replayed later.
The signing key is the secret string exactly as shown to the partner (``whsec_...``), UTF-8.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from secrets import token_urlsafe
from urllib.parse import urlsplit

from payments.errors import InvalidInput

signature_header = "Corridor-Signature"
signature_scheme = "v1"
secret_prefix = "whsec_"  # noqa: S105 - a public marker, not a secret
secret_entropy_bytes = 32
# Five minutes absorbs clock skew and queueing at the receiver, yet keeps the replay window short.
tolerance_s_default = 300
# Bounds on what verify parses: a header from the network is untrusted input.
header_chars_max = 4096
signatures_per_header_max = 8

backoff_s_first = 10
backoff_s_max = 3600
# API.md promises retries for at least 24 hours; the extra hour lets the last try land after the
# promise even when the queue runs late. After the window the delivery is marked failed.
retry_window_s = 86_400 + 3600

event_types = frozenset({
    "payout.created", "payout.processing", "payout.completed", "payout.failed",
    "payout.returned", "payout.cancelled", "payout.held_for_review",
    "payout_batch.created", "payout_batch.completed",
    "incoming_payment.received", "incoming_payment.suspended", "incoming_payment.assigned",
    "incoming_payment.returned", "incoming_payment.refunded", "incoming_payment.rejected",
})
event_types_all = "*"
event_types_per_endpoint_max = 20
url_chars_max = 2048

_timestamp = re.compile(r"[0-9]{1,12}", re.ASCII)
_hex_digest = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_host_label = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?", re.ASCII)
_url_char = re.compile(r"[\x21-\x7e]*", re.ASCII)


def _digest(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secrets: Sequence[bytes], timestamp: int, body: bytes) -> str:
    """The header value: one ``v1`` per secret, in the order given (current secret first)."""
    assert secrets, "a delivery is signed by at least one secret"
    assert all(secrets), "an empty secret signs nothing"
    assert timestamp >= 0, timestamp
    signatures = ",".join(f"{signature_scheme}={_digest(s, timestamp, body)}" for s in secrets)
    return f"t={timestamp},{signatures}"


def _parse(header: str) -> tuple[int, list[str]] | None:
    """(timestamp, v1 digests), or None when the header is malformed.

    Unknown schemes are skipped, so a future ``v2`` beside ``v1`` does not break old receivers.
    """
    if len(header) > header_chars_max:
        return None
    timestamps: list[str] = []
    digests: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            return None
        if key == "t":
            timestamps.append(value)
        elif key == signature_scheme:
            if not _hex_digest.fullmatch(value):
                return None
            digests.append(value.lower())
    if len(timestamps) != 1 or not _timestamp.fullmatch(timestamps[0]):
        return None
    if not 1 <= len(digests) <= signatures_per_header_max:
        return None
    return int(timestamps[0]), digests


def verify(secret: bytes, header: str, body: bytes, now: int,
           tolerance_s: int = tolerance_s_default) -> bool:
    """True when any ``v1`` is ours for this body and the timestamp is within ``tolerance_s``.

    Future timestamps are refused like old ones: either way the clocks disagree by too much.
    Every digest is compared in constant time, so timing tells nothing about a near miss.
    """
    parsed = _parse(header)
    if parsed is None or not secret:
        return False
    timestamp, digests = parsed
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = _digest(secret, timestamp, body)
    matches = [hmac.compare_digest(expected, d) for d in digests]
    return any(matches)


def new_secret() -> str:
    return secret_prefix + token_urlsafe(secret_entropy_bytes)


def backoff_s(attempt: int) -> int:
    """Seconds to wait after failed attempt ``attempt`` (1-based): 10 s doubling, capped at 1 h."""
    assert attempt >= 1, attempt
    # Past the cap the exponent no longer matters; bounding it keeps the integer small.
    doublings = min(attempt - 1, backoff_s_max.bit_length())
    return min(backoff_s_first << doublings, backoff_s_max)


def attempts_for_window() -> int:
    """How many attempts start within ``retry_window_s`` of the first one (which starts at 0).

    With 10 s doubling to the 1 h cap and a 25 h window that is 33 attempts, the last one
    about 24.4 h after the first; the worker stops there and marks the delivery failed.
    """
    attempts, elapsed_s = 1, 0
    while elapsed_s + backoff_s(attempts) <= retry_window_s:
        elapsed_s += backoff_s(attempts)
        attempts += 1
    return attempts


def check_event_types(types: Sequence[str]) -> list[str]:
    """The subscribed types in a canonical (sorted) order; ``["*"]`` alone subscribes to all.

    ``"*"`` is kept as is rather than expanded, so an endpoint on ``*`` also receives event
    types added later; ``subscribes`` is the one place that reads it.
    """
    if isinstance(types, str):
        raise InvalidInput("events must be a list of event types", field="events")
    if not types:
        raise InvalidInput("subscribe to at least one event type, or to \"*\"", field="events")
    if len(types) > event_types_per_endpoint_max:
        raise InvalidInput(f"at most {event_types_per_endpoint_max} event types per endpoint",
                           field="events")
    if len(set(types)) != len(types):
        raise InvalidInput("an event type is listed twice", field="events")
    if event_types_all in types:
        if len(types) != 1:
            raise InvalidInput("\"*\" subscribes to all event types and stands alone",
                               field="events")
        return [event_types_all]
    unknown = sorted(set(types) - event_types)
    if unknown:
        raise InvalidInput(f"unknown event types: {', '.join(map(repr, unknown))}",
                           field="events")
    return sorted(types)


def subscribes(types: Sequence[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to ``types`` (as checked above) receives ``event_type``.

    Only the documented ``event_types`` go out; other outbox events (accounts, transfers,
    endpoint changes) are internal.
    """
    return event_type in event_types and (event_type in types or event_types_all in types)


def _check_host(host: str, bracketed: bool) -> bool:
    if bracketed:  # urlsplit has already checked the IPv6 literal between the brackets
        return True
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and all(_host_label.fullmatch(label) for label in labels)


def check_url(url: str, *, live: bool) -> str:
    """The endpoint URL unchanged, or InvalidInput on ``url``.

    Internationalised hosts must be given in their ASCII (punycode) form. Whether the host is a
    safe destination is decided at delivery time, after DNS, by the delivery worker.
    """
    def refuse(why: str) -> InvalidInput:
        return InvalidInput(f"the webhook URL {why}", field="url")

    if len(url) > url_chars_max:
        raise refuse(f"is longer than {url_chars_max} characters")
    # urlsplit silently drops tabs and newlines, so check the characters before parsing.
    if not _url_char.fullmatch(url):
        raise refuse("may hold only printable ASCII characters without spaces")
    try:
        parts = urlsplit(url)
        port = parts.port  # reading the port is what validates it
    except ValueError as exc:
        raise refuse(f"cannot be parsed: {exc}") from None
    allowed = ("https",) if live else ("http", "https")
    if parts.scheme.lower() not in allowed:
        raise refuse(f"must use {' or '.join(allowed)}")
    if "@" in parts.netloc:
        raise refuse("must not contain a user name or password")
    if "#" in url:
        raise refuse("must not contain a fragment")
    host = parts.hostname or ""
    if not host or not _check_host(host, parts.netloc.startswith("[")):
        raise refuse("needs a valid host")
    if port == 0:
        raise refuse("needs a port from 1 to 65535")
    return url
