"""The check of a MercadoPago Webhooks notification's ``x-signature`` header.

``x-signature: ts=<time>,v1=<hex>``; ``v1`` is the hex HMAC-SHA256, keyed with the
application's webhook secret, of the manifest ``id:<data.id>;request-id:<x-request-id>;ts:<ts>;``
(a part whose value is missing is left out; an alphanumeric ``data.id`` is lower-cased).
Compared in constant time; a ``ts`` (seconds or milliseconds) further from now than the
tolerance is refused, so a captured notification cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from shared.core.errors import ClasscalError

# Above this a ts is in milliseconds (1e11 s is the year 5138).
_MILLISECONDS_FROM = 10**11


class InvalidSignature(ClasscalError):
    """The notification is not provably MercadoPago's; ``code`` says why."""

    code = "invalid_signature"


def manifest(data_id: str | None, request_id: str | None, ts: str | None) -> str:
    parts = []
    if data_id:
        parts.append(f"id:{data_id.lower() if data_id.isalnum() else data_id};")
    if request_id:
        parts.append(f"request-id:{request_id};")
    if ts:
        parts.append(f"ts:{ts};")
    return "".join(parts)


def _parse(header: str) -> tuple[str, str]:
    values: dict[str, str] = {}
    for part in header.split(","):
        key, sep, value = part.partition("=")
        if sep:
            values[key.strip().lower()] = value.strip()
    ts, v1 = values.get("ts"), values.get("v1")
    if not ts:
        raise InvalidSignature("x-signature has no ts", code="signature_malformed")
    if not v1:
        raise InvalidSignature("x-signature has no v1", code="signature_malformed")
    if not ts.isdigit() or len(ts) > 16:
        raise InvalidSignature("x-signature's ts is not a time", code="signature_malformed")
    return ts, v1


def verify(
    header: str | None,
    *,
    request_id: str | None,
    data_id: str | None,
    secret: str,
    tolerance_seconds: float,
    now: float | None = None,
) -> None:
    """Return if the signature is MercadoPago's and fresh; else raise InvalidSignature."""
    if not header:
        raise InvalidSignature("no x-signature header", code="signature_missing")
    ts, v1 = _parse(header[:1024])
    stamp = int(ts)
    seconds = stamp / 1000 if stamp >= _MILLISECONDS_FROM else float(stamp)
    current = time.time() if now is None else now
    expected = hmac.new(
        secret.encode(), manifest(data_id, request_id, ts).encode(), hashlib.sha256
    ).hexdigest()
    # Compared before the age check, so that the time taken says nothing of either.
    matches = hmac.compare_digest(expected.encode(), v1.lower().encode())
    if not matches:
        raise InvalidSignature("x-signature does not match", code="signature_mismatch")
    if abs(current - seconds) > tolerance_seconds:
        raise InvalidSignature(
            f"x-signature's ts is {abs(current - seconds):.0f} s from now, over "
            f"{tolerance_seconds:.0f} s",
            code="signature_stale",
        )
