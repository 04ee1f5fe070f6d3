"""How MercadoPago signs a Webhooks notification (`x-signature: ts=...,v1=...`).

The manifest is `id:<data.id>;request-id:<x-request-id>;ts:<ts>;`, a part left out when
its value is missing, an alphanumeric `data.id` lower-cased; `v1` is the hex
HMAC-SHA256 of the manifest keyed with the application's webhook secret.
"""

from __future__ import annotations

import hashlib
import hmac


def manifest(data_id: str | None, request_id: str | None, ts: str | None) -> str:
    parts = []
    if data_id:
        parts.append(f"id:{data_id.lower() if data_id.isalnum() else data_id};")
    if request_id:
        parts.append(f"request-id:{request_id};")
    if ts:
        parts.append(f"ts:{ts};")
    return "".join(parts)


def signature(secret: str, data_id: str | None, request_id: str | None, ts: str) -> str:
    digest = hmac.new(
        secret.encode(), manifest(data_id, request_id, ts).encode(), hashlib.sha256
    ).hexdigest()
    return f"ts={ts},v1={digest}"
