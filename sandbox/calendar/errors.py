"""Calendar's error body: `{"error": {"code", "message", "errors": [{domain, reason, ...}]}}`,
and, where Google's front end writes it (auth, scope and quota errors), its current form
beside the old list: `"status"` (the google.rpc.Code name) and `"details"` holding an
ErrorInfo whose `reason` is the machine reason (ACCESS_TOKEN_SCOPE_INSUFFICIENT, ...).
google-api-python-client's `HttpError.error_details` reads `details` first."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from werkzeug.wrappers import Response

from sandbox.core.errors import GRPC_STATUS, SandboxError, error_info, json_response

# Calendar reasons that Google reports under the usageLimits domain.
USAGE_LIMIT_REASONS = frozenset(
    {
        "rateLimitExceeded",
        "userRateLimitExceeded",
        "quotaExceeded",
        "dailyLimitExceeded",
        "variableTermLimitExceeded",
    }
)

# The messages Google sends with common reasons, for faults given no message.
CALENDAR_MESSAGES = {
    "rateLimitExceeded": "Rate Limit Exceeded",
    "userRateLimitExceeded": "User Rate Limit Exceeded",
    "quotaExceeded": "Calendar usage limits exceeded.",
    "dailyLimitExceeded": "Daily Limit Exceeded",
    "backendError": "Backend Error",
    "internalError": "Internal Error",
    "notFound": "Not Found",
    "deleted": "Resource has been deleted",
    "duplicate": "The requested identifier already exists.",
    "fullSyncRequired": "Sync token is no longer valid, a full sync is required.",
    "authError": "Invalid Credentials",
    "insufficientPermissions": "Insufficient Permission",
    "forbidden": "Forbidden",
    "badRequest": "Bad Request",
    "invalid": "Invalid Value",
    "timeRangeEmpty": "The specified time range is empty.",
    "conditionNotMet": "Precondition Failed",
}

SERVICE = "calendar-json.googleapis.com"

# The errors Google answers in its current shape by default: (status, old reason) ->
# (top-level message, ErrorInfo reason or None for `status` without `details`).
CURRENT_SHAPE: dict[tuple[int, str], tuple[str, str | None]] = {
    (401, "authError"): (
        "Request had invalid authentication credentials. Expected OAuth 2 access token, "
        "login cookie or other valid authentication credential.",
        None,
    ),
    (403, "insufficientPermissions"): (
        "Request had insufficient authentication scopes.",
        "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
    ),
    (429, "rateLimitExceeded"): ("Resource has been exhausted (e.g. check quota).", None),
}

# The reason a fault given only a status answers with.
DEFAULT_REASONS = {
    400: "badRequest",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    409: "duplicate",
    410: "deleted",
    412: "conditionNotMet",
    429: "rateLimitExceeded",
    500: "backendError",
    503: "backendError",
}


class CalendarError(SandboxError):
    def __init__(
        self,
        status: int,
        reason: str,
        message: str | None = None,
        *,
        domain: str | None = None,
        location_type: str | None = None,
        location: str | None = None,
        headers: dict[str, str] | None = None,
        top_message: str | None = None,
        details: str | None = None,
        method: str | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = message or CALENDAR_MESSAGES.get(reason) or HTTPStatus(status).phrase
        self.domain = domain or ("usageLimits" if reason in USAGE_LIMIT_REASONS else "global")
        self.location_type = location_type
        self.location = location
        self.headers = headers or {}
        current = CURRENT_SHAPE.get((status, reason))
        # Google sometimes words the top-level message differently from errors[0].
        self.top_message = top_message or (current[0] if current else self.message)
        # details: an ErrorInfo reason; "" asks for the old shape only.
        if details is None and current is not None:
            details = current[1] or ""
            self.grpc_status: str | None = GRPC_STATUS.get(status, "UNKNOWN")
        elif details:
            self.grpc_status = GRPC_STATUS.get(status, "UNKNOWN")
        else:
            self.grpc_status = None
        self.details = details or None
        self.method = method
        super().__init__(f"{status} {reason}: {self.message}")

    def to_response(self) -> Response:
        detail: dict[str, Any] = {
            "domain": self.domain,
            "reason": self.reason,
            "message": self.message,
        }
        if self.location_type:
            detail["locationType"] = self.location_type
        if self.location:
            detail["location"] = self.location
        error: dict[str, Any] = {
            "code": self.status,
            "message": self.top_message,
            "errors": [detail],
        }
        if self.grpc_status:
            error["status"] = self.grpc_status
        if self.details:
            metadata = {"method": self.method} if self.method else {}
            error["details"] = [error_info(self.details, SERVICE, **metadata)]
        return json_response({"error": error}, self.status, self.headers)


def not_found() -> CalendarError:
    return CalendarError(404, "notFound")


def bad_request(reason: str, message: str, parameter: str | None = None) -> CalendarError:
    if parameter:
        return CalendarError(400, reason, message, location_type="parameter", location=parameter)
    return CalendarError(400, reason, message)


def invalid_fields(message: str) -> CalendarError:
    """A `fields=` selection that cannot be parsed or names an unknown field."""
    return CalendarError(
        400, "invalidParameter", message, location_type="parameter", location="fields"
    )


def fault_error(
    status: int, reason: str | None, message: str | None, *, details: str | None = None
) -> CalendarError:
    """What an injected fault, an unknown path or a crash answers on Calendar's paths;
    `details` an ErrorInfo reason (None: as Google answers that reason, "": none)."""
    return CalendarError(
        status, reason or DEFAULT_REASONS.get(status, "backendError"), message, details=details
    )
