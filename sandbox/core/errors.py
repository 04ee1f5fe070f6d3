"""The base of every error the sandbox answers with, and the JSON answer itself.

Each API package defines its own subclasses (and so its own error body shape) in
its `errors.py`, plus a `fault_error(status, reason, message)` that builds the
error an injected fault or an unknown path answers with on that API's paths.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from werkzeug.wrappers import Response


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, indent=2) + "\n",
        status=status,
        headers=headers,
        content_type="application/json; charset=UTF-8",
    )


# HTTP status -> the google.rpc.Code name Google's JSON errors carry as "status".
GRPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"


def error_info(reason: str, service: str, **metadata: str) -> dict[str, Any]:
    """A google.rpc.ErrorInfo, the entry of `details` that names the machine reason."""
    return {
        "@type": ERROR_INFO_TYPE,
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": service, **metadata},
    }


def status_phrase(status: int) -> str:
    """The HTTP reason phrase of a status, "Error" for a status HTTP does not name."""
    return HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"


class SandboxError(Exception):
    """Base of every error the sandbox answers with; subclasses render their own body."""

    status: int = 500

    def to_response(self) -> Response:
        raise NotImplementedError
