"""Opaque identifiers and tokens in Google's alphabets."""

from __future__ import annotations

import secrets


def random_token(prefix: str, length: int = 64) -> str:
    """Opaque, unpredictable token text in Google's alphabet (letters, digits, - and _)."""
    return prefix + secrets.token_urlsafe(length)[:length]
