"""Secret Manager's error body: the Cloud `{"error": {"code", "message", "status"}}` shape."""

from __future__ import annotations

from werkzeug.wrappers import Response

from sandbox.core.errors import SandboxError, json_response, status_phrase

# HTTP status -> google.rpc.Code name.
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


class SecretManagerError(SandboxError):
    def __init__(self, status: int, message: str, grpc_status: str | None = None) -> None:
        self.status = status
        self.message = message
        self.grpc_status = grpc_status or GRPC_STATUS.get(status, "UNKNOWN")
        super().__init__(f"{status} {self.grpc_status}: {message}")

    def to_response(self) -> Response:
        body = {"error": {"code": self.status, "message": self.message, "status": self.grpc_status}}
        return json_response(body, self.status)


def invalid(message: str) -> SecretManagerError:
    return SecretManagerError(400, message, "INVALID_ARGUMENT")


def fault_error(status: int, reason: str | None, message: str | None) -> SecretManagerError:
    """What an injected fault, an unknown path or a crash answers on /v1/ paths; a
    reason in capitals is taken as the google.rpc.Code name."""
    grpc_status = reason if reason and reason.isupper() else None
    return SecretManagerError(status, message or status_phrase(status), grpc_status)
