"""Secret Manager v1 over REST, at the paths the real REST transport uses.

The REST transport sends `$alt=json;enum-encoding=int` and expects enums as
numbers then; the sandbox follows, as Google does.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from sandbox import timeutil
from sandbox.errors import SecretManagerError
from sandbox.routing import Reply, RequestContext, Route, route
from sandbox.state import Secret, SecretVersion, State

MAX_PAYLOAD = 64 * 1024
STATE_NUMBERS = {"ENABLED": 1, "DISABLED": 2, "DESTROYED": 3}
_SECRET_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_FILTER_RE = re.compile(r"^\s*state\s*[:=]\s*(ENABLED|DISABLED|DESTROYED)\s*$", re.IGNORECASE)


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


_PARENT = r"projects/(?P<project>[^/]+)"
_LOCATED = r"projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"


def routes() -> list[Route]:
    table: list[Route] = []
    for parent, prefix in (
        (_PARENT, "secretmanager.projects.secrets"),
        (_LOCATED, "secretmanager.projects.locations.secrets"),
    ):
        secret = f"/v1/{parent}/secrets/(?P<secret>[^/:]+)"
        version = f"{secret}/versions/(?P<version>[^/:]+)"
        table += [
            route("POST", f"/v1/{parent}/secrets", f"{prefix}.create", "secretmanager", create),
            route("GET", f"/v1/{parent}/secrets", f"{prefix}.list", "secretmanager", list_secrets),
            route("GET", secret, f"{prefix}.get", "secretmanager", get_secret),
            route("DELETE", secret, f"{prefix}.delete", "secretmanager", delete_secret),
            route(
                "POST", f"{secret}:addVersion", f"{prefix}.addVersion", "secretmanager", add_version
            ),
            route(
                "GET",
                f"{secret}/versions",
                f"{prefix}.versions.list",
                "secretmanager",
                list_versions,
            ),
            route("GET", f"{version}:access", f"{prefix}.versions.access", "secretmanager", access),
            route("GET", version, f"{prefix}.versions.get", "secretmanager", get_version),
            route(
                "POST", f"{version}:disable", f"{prefix}.versions.disable", "secretmanager", disable
            ),
            route(
                "POST", f"{version}:enable", f"{prefix}.versions.enable", "secretmanager", enable
            ),
            route(
                "POST", f"{version}:destroy", f"{prefix}.versions.destroy", "secretmanager", destroy
            ),
        ]
    return table


def _invalid(message: str) -> SecretManagerError:
    return SecretManagerError(400, message, "INVALID_ARGUMENT")


def _parent_name(ctx: RequestContext) -> str:
    params = ctx.params
    if params.get("location"):
        return f"projects/{params['project']}/locations/{params['location']}"
    return f"projects/{params['project']}"


def _secret_name(ctx: RequestContext) -> str:
    return f"{_parent_name(ctx)}/secrets/{ctx.params['secret']}"


def _int_enums(ctx: RequestContext) -> bool:
    return "enum-encoding=int" in ctx.request.args.get("$alt", "")


def _etag(moment: Any) -> str:
    return f'"{int(moment.timestamp() * 1_000_000):x}"'


def _render_secret(secret: Secret) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": secret.name,
        "replication": secret.replication,
        "createTime": timeutil.format_nanos_timestamp(secret.created),
        "etag": _etag(secret.created),
    }
    if secret.labels:
        body["labels"] = dict(secret.labels)
    return body


def _render_version(ctx: RequestContext, secret: Secret, version: SecretVersion) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"{secret.name}/versions/{version.number}",
        "createTime": timeutil.format_nanos_timestamp(version.created),
        "state": STATE_NUMBERS[version.state] if _int_enums(ctx) else version.state,
        "replicationStatus": {"automatic": {}},
        "etag": _etag(version.destroyed or version.created),
    }
    if version.destroyed is not None:
        body["destroyTime"] = timeutil.format_nanos_timestamp(version.destroyed)
    if version.client_checksum:
        body["clientSpecifiedPayloadChecksum"] = True
    return body


def _secret(state: State, ctx: RequestContext) -> Secret:
    name = _secret_name(ctx)
    secret = state.secrets.get(name)
    if secret is None:
        raise SecretManagerError(404, f"Secret [{name}] not found or has no versions.")
    return secret


def _version(state: State, ctx: RequestContext) -> tuple[Secret, SecretVersion]:
    secret = _secret(state, ctx)
    wanted = ctx.params["version"]
    if wanted == "latest":
        # The newest version whatever its state, as Google resolves the alias.
        if not secret.versions:
            raise SecretManagerError(404, f"Secret [{secret.name}] not found or has no versions.")
        return secret, secret.versions[max(secret.versions)]
    if not wanted.isdigit():
        raise _invalid(f"Invalid version id [{wanted}]; must be a positive integer or 'latest'.")
    version = secret.versions.get(int(wanted))
    if version is None:
        raise SecretManagerError(
            404, f"Secret Version [{secret.name}/versions/{wanted}] not found."
        )
    return secret, version


def _not_in_state(secret: Secret, version: SecretVersion) -> SecretManagerError:
    return SecretManagerError(
        400,
        f"Secret Version [{secret.name}/versions/{version.number}] is in {version.state} state.",
        "FAILED_PRECONDITION",
    )


def create(ctx: RequestContext) -> Reply:
    state = ctx.sandbox.state
    secret_id = ctx.request.args.get("secretId", "")
    if not _SECRET_ID_RE.match(secret_id):
        raise _invalid(
            "Secret id must be 1 to 255 characters of letters, digits, underscores and hyphens."
        )
    body = ctx.json_body(_invalid)
    replication = body.get("replication")
    if not isinstance(replication, dict) or not (
        "automatic" in replication or "userManaged" in replication
    ):
        raise _invalid("Secret.replication is required.")
    labels = body.get("labels") or {}
    name = f"{_parent_name(ctx)}/secrets/{secret_id}"
    with state.lock:
        if name in state.secrets:
            raise SecretManagerError(409, f"Secret [{name}] already exists.", "ALREADY_EXISTS")
        secret = Secret(name, timeutil.now(), replication, dict(labels))
        state.secrets[name] = secret
        return Reply(_render_secret(secret))


def get_secret(ctx: RequestContext) -> Reply:
    state = ctx.sandbox.state
    with state.lock:
        return Reply(_render_secret(_secret(state, ctx)))


def delete_secret(ctx: RequestContext) -> Reply:
    state = ctx.sandbox.state
    with state.lock:
        del state.secrets[_secret(state, ctx).name]
    return Reply({})


def list_secrets(ctx: RequestContext) -> Reply:
    state = ctx.sandbox.state
    prefix = f"{_parent_name(ctx)}/secrets/"
    with state.lock:
        found = [
            _render_secret(s) for n, s in sorted(state.secrets.items()) if n.startswith(prefix)
        ]
    return Reply(_page(ctx, found, "secrets"))


def _page(ctx: RequestContext, items: list[dict[str, Any]], key: str) -> dict[str, Any]:
    try:
        size = int(ctx.request.args.get("pageSize") or 25_000)
        offset = int(ctx.request.args.get("pageToken") or 0)
    except ValueError as exc:
        raise _invalid("Invalid pageSize or pageToken.") from exc
    body: dict[str, Any] = {key: items[offset : offset + size], "totalSize": len(items)}
    if offset + size < len(items):
        body["nextPageToken"] = str(offset + size)
    return body


def add_version(ctx: RequestContext) -> Reply:
    state = ctx.sandbox.state
    body = ctx.json_body(_invalid)
    payload = body.get("payload") or {}
    try:
        data = base64.b64decode(payload.get("data", ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid("Secret payload data is not valid base64.") from exc
    if len(data) > MAX_PAYLOAD:
        raise _invalid(f"Secret Payload cannot exceed {MAX_PAYLOAD} bytes.")
    checksum = payload.get("dataCrc32c")
    if checksum is not None and int(checksum) != crc32c(data):
        raise _invalid("Checksum mismatch: the payload's dataCrc32c does not match its data.")
    with state.lock:
        secret = _secret(state, ctx)
        number = max(secret.versions, default=0) + 1
        version = SecretVersion(
            number, data, "ENABLED", timeutil.now(), client_checksum=checksum is not None
        )
        secret.versions[number] = version
        return Reply(_render_version(ctx, secret, version))


def access(ctx: RequestContext) -> Reply:
    state = ctx.sandbox.state
    with state.lock:
        secret, version = _version(state, ctx)
        if version.state != "ENABLED" or version.data is None:
            raise _not_in_state(secret, version)
        data = version.data
    return Reply(
        {
            "name": f"{secret.name}/versions/{version.number}",
            "payload": {
                "data": base64.b64encode(data).decode("ascii"),
                "dataCrc32c": str(crc32c(data)),
            },
        }
    )


def get_version(ctx: RequestContext) -> Reply:
    state = ctx.sandbox.state
    with state.lock:
        secret, version = _version(state, ctx)
        return Reply(_render_version(ctx, secret, version))


def list_versions(ctx: RequestContext) -> Reply:
    state = ctx.sandbox.state
    wanted_state: str | None = None
    text = ctx.request.args.get("filter")
    if text:
        match = _FILTER_RE.match(text)
        if match is None:
            raise _invalid(f"The sandbox supports only filter=state:STATE, not {text!r}.")
        wanted_state = match.group(1).upper()
    with state.lock:
        secret = _secret(state, ctx)
        newest_first = sorted(secret.versions.values(), key=lambda v: v.number, reverse=True)
        found = [
            _render_version(ctx, secret, v)
            for v in newest_first
            if wanted_state is None or v.state == wanted_state
        ]
    return Reply(_page(ctx, found, "versions"))


def disable(ctx: RequestContext) -> Reply:
    return _transition(ctx, "DISABLED")


def enable(ctx: RequestContext) -> Reply:
    return _transition(ctx, "ENABLED")


def destroy(ctx: RequestContext) -> Reply:
    return _transition(ctx, "DESTROYED")


def _transition(ctx: RequestContext, target: str) -> Reply:
    state = ctx.sandbox.state
    with state.lock:
        secret, version = _version(state, ctx)
        if version.state == "DESTROYED":
            raise _not_in_state(secret, version)
        version.state = target
        if target == "DESTROYED":
            version.data = None  # the payload is gone for good
            version.destroyed = timeutil.now()
        return Reply(_render_version(ctx, secret, version))
