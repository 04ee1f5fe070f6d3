"""Errors, each rendered in the body shape of the API it belongs to.

Handlers raise these; the server turns them into responses. Calendar uses the
classic `{"error": {"code", "message", "errors": [...]}}` shape, Secret Manager
the Cloud `{"error": {"code", "message", "status"}}` shape, the OAuth token
endpoint RFC 6749's `{"error", "error_description"}`, and the consent screen
an HTML page.
"""

from __future__ import annotations

import html
import json
from http import HTTPStatus
from typing import Any

from werkzeug.wrappers import Response

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

# HTTP status -> google.rpc.Code name, for Secret Manager errors.
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


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, indent=2) + "\n",
        status=status,
        headers=headers,
        content_type="application/json; charset=UTF-8",
    )


class SandboxError(Exception):
    """Base of every error the sandbox answers with."""

    status: int = 500

    def to_response(self) -> Response:
        raise NotImplementedError


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
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = message or CALENDAR_MESSAGES.get(reason) or HTTPStatus(status).phrase
        self.domain = domain or ("usageLimits" if reason in USAGE_LIMIT_REASONS else "global")
        self.location_type = location_type
        self.location = location
        self.headers = headers or {}
        # Google sometimes words the top-level message differently from errors[0].
        self.top_message = top_message or self.message
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
        body = {"error": {"code": self.status, "message": self.top_message, "errors": [detail]}}
        return json_response(body, self.status, self.headers)


def not_found() -> CalendarError:
    return CalendarError(404, "notFound")


def bad_request(reason: str, message: str, parameter: str | None = None) -> CalendarError:
    if parameter:
        return CalendarError(400, reason, message, location_type="parameter", location=parameter)
    return CalendarError(400, reason, message)


class SecretManagerError(SandboxError):
    def __init__(self, status: int, message: str, grpc_status: str | None = None) -> None:
        self.status = status
        self.message = message
        self.grpc_status = grpc_status or GRPC_STATUS.get(status, "UNKNOWN")
        super().__init__(f"{status} {self.grpc_status}: {message}")

    def to_response(self) -> Response:
        body = {"error": {"code": self.status, "message": self.message, "status": self.grpc_status}}
        return json_response(body, self.status)


class OAuthError(SandboxError):
    def __init__(self, status: int, error: str, description: str | None = None) -> None:
        self.status = status
        self.error = error
        self.description = description
        super().__init__(f"{status} {error}: {description}")

    def to_response(self) -> Response:
        body: dict[str, str] = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        headers = {"WWW-Authenticate": "Basic"} if self.status == 401 else None
        return json_response(body, self.status, headers)


class ConsentPageError(SandboxError):
    """The HTML page Google shows instead of the consent screen ("Error 400: ...")."""

    def __init__(self, status: int, error: str, description: str) -> None:
        self.status = status
        self.error = error
        self.description = description
        super().__init__(f"{status} {error}: {description}")

    def to_response(self) -> Response:
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Error {self.status}: {html.escape(self.error)}</title></head>
<body>
<h1>Access blocked: authorization error</h1>
<p id="error-code">Error {self.status}: {html.escape(self.error)}</p>
<p id="error-description">{html.escape(self.description)}</p>
</body></html>
"""  # noqa: E501
        return Response(page, status=self.status, content_type="text/html; charset=utf-8")


class ControlError(SandboxError):
    """A malformed request to a /_sandbox/ control endpoint."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)

    def to_response(self) -> Response:
        return json_response({"error": self.message}, self.status)


def fault_error(api: str, status: int, reason: str | None, message: str | None) -> SandboxError:
    """The error an injected fault answers with, shaped for the API of the path."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    if api == "calendar":
        return CalendarError(status, reason or _default_calendar_reason(status), message)
    if api == "secretmanager":
        grpc_status = reason if reason and reason.isupper() else None
        return SecretManagerError(status, message or phrase, grpc_status)
    if api == "oauth":
        return OAuthError(status, reason or "server_error", message or phrase)
    if api == "consent":
        return ConsentPageError(status, reason or "server_error", message or phrase)
    return ControlError(status, message or reason or phrase)


def _default_calendar_reason(status: int) -> str:
    return {
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
    }.get(status, "backendError")
