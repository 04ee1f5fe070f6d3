"""The RSA keys the sandbox signs with (id_tokens, service accounts' JWTs), their
published forms (PEM certificate, JWK), and the check of an RS256 JWT's signature."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from sandbox.core import timeutil


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Base64url without padding, as JWTs carry it; ValueError when malformed."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64url") from exc


def verify_rs256(public_key: rsa.RSAPublicKey, signing_input: bytes, signature: bytes) -> bool:
    """Whether `signature` is an RS256 signature of `signing_input` by `public_key`."""
    try:
        public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _int_b64url(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class SigningKey:
    """One RS256 key with a self-signed certificate, made at startup."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = hashlib.sha1(public_der, usedforsecurity=False).hexdigest()
        name = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, "federated-signon.system.gserviceaccount.com")]
        )
        issued = timeutil.now()
        self.certificate_pem = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(issued - timedelta(days=1))
            .not_valid_after(issued + timedelta(days=14))
            .sign(self._key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
            .decode("ascii")
        )

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self._key.public_key()

    def private_key_pem(self) -> str:
        """The private key as PKCS#8 PEM, as a service-account key file carries it."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    def jwk(self) -> dict[str, str]:
        numbers = self._key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": _int_b64url(numbers.n),
            "e": _int_b64url(numbers.e),
        }

    def sign_jwt(self, claims: dict[str, Any], *, corrupt_signature: bool = False) -> str:
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self._key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        if corrupt_signature:
            # Flip bits in the middle: still well-formed base64, no longer valid.
            middle = len(signature) // 2
            signature = (
                signature[:middle] + bytes([signature[middle] ^ 0xFF]) + signature[middle + 1 :]
            )
        return signing_input + "." + b64url(signature)
