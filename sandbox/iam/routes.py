"""IAM Credentials' routes table (Google serves it at iamcredentials.googleapis.com)."""

from __future__ import annotations

from sandbox.core.routing import Api, RouteRow, bind
from sandbox.iam import handlers
from sandbox.iam.backend import IamBackend
from sandbox.iam.errors import fault_error

_ACCOUNT = r"/v1/projects/-/serviceAccounts/(?P<email>[^/:]+)"

TABLE: tuple[RouteRow, ...] = (
    (
        "POST",
        f"{_ACCOUNT}:signJwt",
        "iamcredentials.projects.serviceAccounts.signJwt",
        handlers.sign_jwt,
    ),
)


def apis(backend: IamBackend) -> list[Api]:
    return [
        Api(
            "iamcredentials",
            ("/v1/projects/-/serviceAccounts/",),
            bind(TABLE, backend),
            fault_error,
        )
    ]
