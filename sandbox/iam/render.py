"""IAM Credentials' answers as Google writes them."""

from __future__ import annotations

from typing import Any


def signed_jwt(key_id: str, jwt: str) -> dict[str, Any]:
    return {"keyId": key_id, "signedJwt": jwt}
