"""The Secret Manager backend: secrets by full name, their numbered versions and the
versions' states (ENABLED, DISABLED, DESTROYED). Everything under `lock`; every
method returns copies, safe to render outside it."""

from __future__ import annotations

import copy
import re
import threading
from typing import Any

from sandbox.core import timeutil
from sandbox.secretmanager.errors import SecretManagerError, invalid
from sandbox.secretmanager.models import Secret, SecretVersion

MAX_PAYLOAD = 64 * 1024
_SECRET_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), what dataCrc32c carries. google-crc32c is not a
    dependency here, and payloads are at most 64 KiB, so pure Python will do."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC32C_TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


def check_secret_id(secret_id: str) -> None:
    if not _SECRET_ID_RE.match(secret_id):
        raise invalid(
            "Secret id must be 1 to 255 characters of letters, digits, underscores and hyphens."
        )


def _not_in_state(secret: Secret, version: SecretVersion) -> SecretManagerError:
    return SecretManagerError(
        400,
        f"Secret Version [{secret.name}/versions/{version.number}] is in {version.state} state.",
        "FAILED_PRECONDITION",
    )


class SecretManagerBackend:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.secrets: dict[str, Secret] = {}

    def _secret(self, name: str) -> Secret:
        secret = self.secrets.get(name)
        if secret is None:
            raise SecretManagerError(404, f"Secret [{name}] not found or has no versions.")
        return secret

    def _version(self, name: str, wanted: str) -> tuple[Secret, SecretVersion]:
        secret = self._secret(name)
        if wanted == "latest":
            # The newest version whatever its state, as Google resolves the alias.
            if not secret.versions:
                raise SecretManagerError(
                    404, f"Secret [{secret.name}] not found or has no versions."
                )
            return secret, secret.versions[max(secret.versions)]
        if not wanted.isdigit():
            raise invalid(f"Invalid version id [{wanted}]; must be a positive integer or 'latest'.")
        version = secret.versions.get(int(wanted))
        if version is None:
            raise SecretManagerError(
                404, f"Secret Version [{secret.name}/versions/{wanted}] not found."
            )
        return secret, version

    @staticmethod
    def _copy(secret: Secret, version: SecretVersion | None = None) -> Any:
        shallow = copy.copy(secret)
        shallow.versions = {}
        return shallow if version is None else (shallow, copy.copy(version))

    def create(
        self, parent: str, secret_id: str, replication: Any, labels: dict[str, str]
    ) -> Secret:
        check_secret_id(secret_id)
        if not isinstance(replication, dict) or not (
            "automatic" in replication or "userManaged" in replication
        ):
            raise invalid("Secret.replication is required.")
        name = f"{parent}/secrets/{secret_id}"
        with self.lock:
            if name in self.secrets:
                raise SecretManagerError(409, f"Secret [{name}] already exists.", "ALREADY_EXISTS")
            secret = Secret(name, timeutil.now(), replication, dict(labels))
            self.secrets[name] = secret
            return self._copy(secret)

    def get(self, name: str) -> Secret:
        with self.lock:
            return self._copy(self._secret(name))

    def delete(self, name: str) -> None:
        with self.lock:
            del self.secrets[self._secret(name).name]

    def list(self, parent: str) -> list[Secret]:
        prefix = f"{parent}/secrets/"
        with self.lock:
            return [self._copy(s) for n, s in sorted(self.secrets.items()) if n.startswith(prefix)]

    def add_version(
        self, name: str, data: bytes, checksum: int | None = None
    ) -> tuple[Secret, SecretVersion]:
        if len(data) > MAX_PAYLOAD:
            raise invalid(f"Secret Payload cannot exceed {MAX_PAYLOAD} bytes.")
        if checksum is not None and checksum != crc32c(data):
            raise invalid("Checksum mismatch: the payload's dataCrc32c does not match its data.")
        with self.lock:
            secret = self._secret(name)
            number = max(secret.versions, default=0) + 1
            version = SecretVersion(
                number, data, "ENABLED", timeutil.now(), client_checksum=checksum is not None
            )
            secret.versions[number] = version
            return self._copy(secret, version)

    def access(self, name: str, wanted: str) -> tuple[Secret, SecretVersion]:
        """The version and its payload; only an ENABLED version can be read."""
        with self.lock:
            secret, version = self._version(name, wanted)
            if version.state != "ENABLED" or version.data is None:
                raise _not_in_state(secret, version)
            return self._copy(secret, version)

    def get_version(self, name: str, wanted: str) -> tuple[Secret, SecretVersion]:
        with self.lock:
            return self._copy(*self._version(name, wanted))

    def list_versions(
        self, name: str, state: str | None = None
    ) -> tuple[Secret, list[SecretVersion]]:
        """Newest first, only those in `state` when given."""
        with self.lock:
            secret = self._secret(name)
            newest_first = sorted(secret.versions.values(), key=lambda v: v.number, reverse=True)
            return self._copy(secret), [
                copy.copy(v) for v in newest_first if state is None or v.state == state
            ]

    def transition(self, name: str, wanted: str, target: str) -> tuple[Secret, SecretVersion]:
        """Disable, enable or destroy a version; a destroyed one stays destroyed."""
        with self.lock:
            secret, version = self._version(name, wanted)
            if version.state == "DESTROYED":
                raise _not_in_state(secret, version)
            version.state = target
            if target == "DESTROYED":
                version.data = None  # the payload is gone for good
                version.destroyed = timeutil.now()
            return self._copy(secret, version)
