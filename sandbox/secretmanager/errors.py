"""Secret Manager's error body: the Cloud `{"error": {"code", "message", "status"}}` shape,
with a `details` list holding an ErrorInfo when a reason is given (faults may carry one)."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from sandbox.core.errors import GRPC_STATUS, SandboxError, error_info, json_response, status_phrase

SERVICE = "secretmanager.googleapis.com"


class SecretManagerError(SandboxError):
    def __init__(
        self,
        status: int,
        message: str,
        grpc_status: str | None = None,
        *,
        details_reason: str | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.grpc_status = grpc_status or GRPC_STATUS.get(status, "UNKNOWN")
        self.details_reason = details_reason
        super().__init__(f"{status} {self.grpc_status}: {message}")

    def to_response(self) -> Response:
        error: dict[str, Any] = {
            "code": self.status,
            "message": self.message,
            "status": self.grpc_status,
        }
        if self.details_reason:
            error["details"] = [error_info(self.details_reason, SERVICE)]
        return json_response({"error": error}, self.status)


def invalid(message: str) -> SecretManagerError:
    return SecretManagerError(400, message, "INVALID_ARGUMENT")


def fault_error(
    status: int, reason: str | None, message: str | None, *, details: str | None = None
) -> SecretManagerError:
    """What an injected fault, an unknown path or a crash answers on /v1/ paths; a
    reason in capitals is taken as the google.rpc.Code name, `details` as an ErrorInfo
    reason. FAILED_PRECONDITION is a 400 over REST, as Google sends it."""
    grpc_status = reason if reason and reason.isupper() else None
    return SecretManagerError(
        status, message or status_phrase(status), grpc_status, details_reason=details or None
    )
