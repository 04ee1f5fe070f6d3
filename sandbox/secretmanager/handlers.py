"""Secret Manager's HTTP side: names from the path, the body, then the backend."""

from __future__ import annotations

import base64
import binascii
import re

from sandbox.core.routing import ApiRequest, Reply
from sandbox.secretmanager import render
from sandbox.secretmanager.backend import SecretManagerBackend, check_secret_id
from sandbox.secretmanager.errors import invalid

_FILTER_RE = re.compile(r"^\s*state\s*[:=]\s*(ENABLED|DISABLED|DESTROYED)\s*$", re.IGNORECASE)


def _parent_name(req: ApiRequest) -> str:
    params = req.params
    if params.get("location"):
        return f"projects/{params['project']}/locations/{params['location']}"
    return f"projects/{params['project']}"


def _secret_name(req: ApiRequest) -> str:
    return f"{_parent_name(req)}/secrets/{req.params['secret']}"


def _int_enums(req: ApiRequest) -> bool:
    return "enum-encoding=int" in req.args.get("$alt", "")


def _paging(req: ApiRequest) -> tuple[int, int]:
    try:
        size = int(req.args.get("pageSize") or 25_000)
        offset = int(req.args.get("pageToken") or 0)
    except ValueError as exc:
        raise invalid("Invalid pageSize or pageToken.") from exc
    return size, offset


def create(backend: SecretManagerBackend, req: ApiRequest) -> Reply:
    secret_id = req.args.get("secretId", "")
    check_secret_id(secret_id)
    body = req.json_body(invalid)
    secret = backend.create(
        _parent_name(req), secret_id, body.get("replication"), body.get("labels") or {}
    )
    return Reply(render.secret(secret))


def get_secret(backend: SecretManagerBackend, req: ApiRequest) -> Reply:
    return Reply(render.secret(backend.get(_secret_name(req))))


def delete_secret(backend: SecretManagerBackend, req: ApiRequest) -> Reply:
    backend.delete(_secret_name(req))
    return Reply({})


def list_secrets(backend: SecretManagerBackend, req: ApiRequest) -> Reply:
    found = [render.secret(s) for s in backend.list(_parent_name(req))]
    return Reply(render.page(found, "secrets", *_paging(req)))


def add_version(backend: SecretManagerBackend, req: ApiRequest) -> Reply:
    body = req.json_body(invalid)
    payload = body.get("payload") or {}
    try:
        data = base64.b64decode(payload.get("data", ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid("Secret payload data is not valid base64.") from exc
    checksum = payload.get("dataCrc32c")
    secret, version = backend.add_version(
        _secret_name(req), data, int(checksum) if checksum is not None else None
    )
    return Reply(render.version(secret, version, int_enums=_int_enums(req)))


def access(backend: SecretManagerBackend, req: ApiRequest) -> Reply:
    secret, version = backend.access(_secret_name(req), req.params["version"])
    return Reply(render.access(secret, version))


def get_version(backend: SecretManagerBackend, req: ApiRequest) -> Reply:
    secret, version = backend.get_version(_secret_name(req), req.params["version"])
    return Reply(render.version(secret, version, int_enums=_int_enums(req)))


def list_versions(backend: SecretManagerBackend, req: ApiRequest) -> Reply:
    wanted_state: str | None = None
    text = req.args.get("filter")
    if text:
        match = _FILTER_RE.match(text)
        if match is None:
            raise invalid(f"The sandbox supports only filter=state:STATE, not {text!r}.")
        wanted_state = match.group(1).upper()
    secret, versions = backend.list_versions(_secret_name(req), wanted_state)
    found = [render.version(secret, v, int_enums=_int_enums(req)) for v in versions]
    return Reply(render.page(found, "versions", *_paging(req)))


def disable(backend: SecretManagerBackend, req: ApiRequest) -> Reply:
    return _transition(backend, req, "DISABLED")


def enable(backend: SecretManagerBackend, req: ApiRequest) -> Reply:
    return _transition(backend, req, "ENABLED")


def destroy(backend: SecretManagerBackend, req: ApiRequest) -> Reply:
    return _transition(backend, req, "DESTROYED")


def _transition(backend: SecretManagerBackend, req: ApiRequest, target: str) -> Reply:
    secret, version = backend.transition(_secret_name(req), req.params["version"], target)
    return Reply(render.version(secret, version, int_enums=_int_enums(req)))
