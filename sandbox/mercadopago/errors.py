"""MercadoPago's error body: `{"message", "error", "status", "cause": [{"code", "description",
"data"}]}`, the shape every MercadoPago API answers errors with."""

from __future__ import annotations

from werkzeug.wrappers import Response

from sandbox.core.errors import SandboxError, json_response, status_phrase

# HTTP status -> MercadoPago's `error` word.
ERROR_WORDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    429: "too_many_requests",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


class MercadoPagoError(SandboxError):
    def __init__(
        self, status: int, message: str, error: str | None = None, cause_code: int | None = None
    ) -> None:
        self.status = status
        self.message = message
        self.error = error or ERROR_WORDS.get(status, "error")
        self.cause_code = cause_code
        super().__init__(f"{status} {self.error}: {message}")

    def to_response(self) -> Response:
        cause = (
            [{"code": self.cause_code, "description": self.message, "data": None}]
            if self.cause_code is not None
            else []
        )
        body = {"message": self.message, "error": self.error, "status": self.status, "cause": cause}
        return json_response(body, self.status)


def unauthorized(message: str = "invalid access token") -> MercadoPagoError:
    return MercadoPagoError(401, message, "unauthorized", 2)


def not_found(what: str) -> MercadoPagoError:
    return MercadoPagoError(404, f"{what} not found", "not_found", 2000)


def bad_request(message: str, cause_code: int | None = None) -> MercadoPagoError:
    return MercadoPagoError(400, message, "bad_request", cause_code)


def fault_error(status: int, reason: str | None, message: str | None) -> MercadoPagoError:
    """What an injected fault, an unknown path or a crash answers on MercadoPago's paths;
    `reason` is taken as the `error` word."""
    return MercadoPagoError(status, message or status_phrase(status), reason)
