"""IAM Credentials' error body: the Cloud `{"error": {"code", "message", "status"}}` shape."""

from __future__ import annotations

from werkzeug.wrappers import Response

from sandbox.core.errors import SandboxError, json_response, status_phrase

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class IamError(SandboxError):
    def __init__(self, status: int, message: str, grpc_status: str | None = None) -> None:
        self.status = status
        self.message = message
        self.grpc_status = grpc_status or _STATUS.get(status, "UNKNOWN")
        super().__init__(f"{status} {self.grpc_status}: {message}")

    def to_response(self) -> Response:
        body = {"error": {"code": self.status, "message": self.message, "status": self.grpc_status}}
        return json_response(body, self.status)


def fault_error(status: int, reason: str | None, message: str | None) -> IamError:
    grpc_status = reason if reason and reason.isupper() else None
    return IamError(status, message or status_phrase(status), grpc_status)
