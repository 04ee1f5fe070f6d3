"""Secret Manager resources as the REST transport expects them. With
`$alt=json;enum-encoding=int` (what the transport sends) enums are numbers."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from sandbox.core import timeutil
from sandbox.secretmanager.backend import crc32c
from sandbox.secretmanager.models import Secret, SecretVersion

STATE_NUMBERS = {"ENABLED": 1, "DISABLED": 2, "DESTROYED": 3}


def _etag(moment: datetime) -> str:
    return f'"{int(moment.timestamp() * 1_000_000):x}"'


def secret(secret: Secret) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": secret.name,
        "replication": secret.replication,
        "createTime": timeutil.format_nanos_timestamp(secret.created),
        "etag": _etag(secret.created),
    }
    if secret.labels:
        body["labels"] = dict(secret.labels)
    return body


def version(secret: Secret, version: SecretVersion, *, int_enums: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"{secret.name}/versions/{version.number}",
        "createTime": timeutil.format_nanos_timestamp(version.created),
        "state": STATE_NUMBERS[version.state] if int_enums else version.state,
        "replicationStatus": {"automatic": {}},
        "etag": _etag(version.destroyed or version.created),
    }
    if version.destroyed is not None:
        body["destroyTime"] = timeutil.format_nanos_timestamp(version.destroyed)
    if version.client_checksum:
        body["clientSpecifiedPayloadChecksum"] = True
    return body


def access(secret: Secret, version: SecretVersion) -> dict[str, Any]:
    data = version.data or b""
    return {
        "name": f"{secret.name}/versions/{version.number}",
        "payload": {
            "data": base64.b64encode(data).decode("ascii"),
            "dataCrc32c": str(crc32c(data)),
        },
    }


def page(items: list[dict[str, Any]], key: str, size: int, offset: int) -> dict[str, Any]:
    body: dict[str, Any] = {key: items[offset : offset + size], "totalSize": len(items)}
    if offset + size < len(items):
        body["nextPageToken"] = str(offset + size)
    return body
