"""Signed, expiring values for cookies: a JSON payload and an HMAC-SHA256 over it. Pure.

``seal(payload, key, purpose, lifetime)`` gives ``<payload>.<mac>`` in URL-safe base64;
``unseal`` returns the payload only when the MAC matches (compared in constant time)
for the same key *and* purpose, and the value has not expired. The purpose is part of
what is signed, so a value sealed as one thing (an OAuth flow) is never accepted as
another (a session). The payload is signed, not encrypted: it must hold nothing the
browser that carries it may not see.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

MAX_VALUE_LENGTH = 3000  # a cookie is at most 4096 bytes with its name and attributes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, purpose: str, body: str) -> bytes:
    return hmac.new(key, f"{purpose}.{body}".encode(), hashlib.sha256).digest()


def derive_key(key: bytes, purpose: str) -> bytes:
    """A key for one use (sessions, CSRF tokens, ...) from the one configured key."""
    return hmac.new(key, f"classcal-key.{purpose}".encode(), hashlib.sha256).digest()


def seal(
    payload: Mapping[str, Any],
    key: bytes,
    purpose: str,
    lifetime: float,
    *,
    now: float | None = None,
) -> str:
    issued = time.time() if now is None else now
    body = _b64(
        json.dumps(
            {**payload, "iat": int(issued), "exp": int(issued + lifetime)},
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
    )
    return f"{body}.{_b64(_mac(key, purpose, body))}"


def unseal(
    value: str | None, key: bytes, purpose: str, *, now: float | None = None
) -> dict[str, Any] | None:
    """The payload of a value sealed with ``key`` for ``purpose``, or None (forged,
    tampered, sealed for another purpose, malformed or expired)."""
    if not value or len(value) > MAX_VALUE_LENGTH or value.count(".") != 1:
        return None
    body, mac = value.split(".")
    try:
        given = _unb64(mac)
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(given, _mac(key, purpose, body)):
        return None
    try:
        payload = json.loads(_unb64(body))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    expires = payload.get("exp")
    if not isinstance(expires, int) or expires <= (time.time() if now is None else now):
        return None
    return payload


def digest(value: str) -> str:
    """A SHA-256 hex digest, for secrets stored only to be compared (channel tokens)."""
    return hashlib.sha256(value.encode()).hexdigest()


def matches_digest(value: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(value).encode(), stored_digest.encode())
