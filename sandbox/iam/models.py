"""What the IAM backend stores."""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.core.signing import SigningKey


@dataclass
class ServiceAccount:
    email: str
    unique_id: str  # the 21-digit id, which is also its OAuth client id
    project: str
    system_key: SigningKey  # Google-managed: signJwt signs with it, it never leaves Google
    user_keys: dict[str, SigningKey] = field(default_factory=dict)  # private_key_id -> key


@dataclass(frozen=True)
class PublicKeys:
    """What the token endpoint needs to check an assertion `iss` claims to be from."""

    email: str
    unique_id: str
    keys: dict[str, object]  # key id -> RSA public key
