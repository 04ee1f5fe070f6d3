"""Secret Manager's routes table, for both the global and the located paths."""

from __future__ import annotations

from sandbox.core.routing import Api, RouteRow, bind
from sandbox.secretmanager import handlers
from sandbox.secretmanager.backend import SecretManagerBackend
from sandbox.secretmanager.errors import fault_error

_PARENT = r"projects/(?P<project>[^/]+)"
_LOCATED = r"projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"


def _table(parent: str, prefix: str) -> tuple[RouteRow, ...]:
    secrets = f"/v1/{parent}/secrets"
    secret = f"{secrets}/(?P<secret>[^/:]+)"
    version = f"{secret}/versions/(?P<version>[^/:]+)"
    return (
        ("POST", secrets, f"{prefix}.create", handlers.create),
        ("GET", secrets, f"{prefix}.list", handlers.list_secrets),
        ("GET", secret, f"{prefix}.get", handlers.get_secret),
        ("DELETE", secret, f"{prefix}.delete", handlers.delete_secret),
        ("POST", f"{secret}:addVersion", f"{prefix}.addVersion", handlers.add_version),
        ("GET", f"{secret}/versions", f"{prefix}.versions.list", handlers.list_versions),
        ("GET", f"{version}:access", f"{prefix}.versions.access", handlers.access),
        ("GET", version, f"{prefix}.versions.get", handlers.get_version),
        ("POST", f"{version}:disable", f"{prefix}.versions.disable", handlers.disable),
        ("POST", f"{version}:enable", f"{prefix}.versions.enable", handlers.enable),
        ("POST", f"{version}:destroy", f"{prefix}.versions.destroy", handlers.destroy),
    )


TABLE = _table(_PARENT, "secretmanager.projects.secrets") + _table(
    _LOCATED, "secretmanager.projects.locations.secrets"
)


def apis(backend: SecretManagerBackend) -> list[Api]:
    return [Api("secretmanager", ("/v1/",), bind(TABLE, backend), fault_error)]
