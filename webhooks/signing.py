"""Building a signed callback request, and checking one (what a receiver does).

Pure: no I/O, no clock (the caller passes the time). Every request carries

- ``X-Parley-Callback``: the callback's name;
- ``X-Parley-Id``: the idempotency id, the same on every attempt of one call;
- ``X-Parley-Timestamp``: Unix seconds when this attempt was signed;
- ``X-Parley-Signature``: ``v1=`` and the hex HMAC-SHA256, keyed with the shared
  secret, of the timestamp, a ``.``, and the body's bytes.

A receiver recomputes the signature over the timestamp and the raw body, compares
in constant time, refuses a timestamp too far from its clock (a replay), and keeps
the ids it has handled for that long (a retry or a replay within the window).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

CALLBACK_HEADER = "X-Parley-Callback"
ID_HEADER = "X-Parley-Id"
TIMESTAMP_HEADER = "X-Parley-Timestamp"
SIGNATURE_HEADER = "X-Parley-Signature"
SIGNATURE_VERSION = "v1"
REPLAY_WINDOW_S = 300
"""How far from its own clock a receiver should accept a timestamp (the recipe's value)."""

SECRET_FIELDS = frozenset({"password", "old_password", "new_password", "token", "password_hash"})
"""Field names never sent to the app, at any depth of a body."""

_json = msgspec.json.Encoder()


def new_call_id() -> str:
    """An idempotency id: 128 random bits as 32 hex digits."""
    return secrets.token_hex(16)


def without_secrets(value: Any) -> Any:
    """``value`` (JSON-like builtins) with every field named in ``SECRET_FIELDS`` removed."""
    if isinstance(value, dict):
        return {k: without_secrets(v) for k, v in value.items() if k not in SECRET_FIELDS}
    if isinstance(value, list):
        return [without_secrets(v) for v in value]
    return value


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Parley-Signature`` value of ``body`` signed at ``timestamp``."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The JSON bytes of a callback body (builtins and msgspec records), secrets removed."""
    return _json.encode(without_secrets(msgspec.to_builtins(dict(body))))


@dataclass(frozen=True)
class SignedRequest:
    body: bytes
    headers: dict[str, str]


def signed_request(
    secret: bytes, callback: str, call_id: str, body: bytes, timestamp: int
) -> SignedRequest:
    """The body and headers of one attempt of a call."""
    return SignedRequest(
        body,
        {
            "Content-Type": "application/json",
            CALLBACK_HEADER: callback,
            ID_HEADER: call_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(secret, timestamp, body),
        },
    )


def verify(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    window_s: float = REPLAY_WINDOW_S,
) -> bool:
    """Whether a received request is signed with ``secret`` and recent (the receiver's
    check; ``headers`` looked up by their exact names, as a case-insensitive mapping
    such as Starlette's or httpx's does)."""
    given = headers.get(SIGNATURE_HEADER, "")
    stamp = headers.get(TIMESTAMP_HEADER, "")
    if not stamp.isdigit() or abs(now - int(stamp)) > window_s:
        return False
    return hmac.compare_digest(given, signature(secret, int(stamp), body))
