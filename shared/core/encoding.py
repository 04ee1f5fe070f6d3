"""Bytes for the wire: compact JSON and the strong ETag of a body. Pure."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def strong_etag(body: bytes) -> str:
    """A strong validator: the same bytes always give the same tag, on every instance."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
