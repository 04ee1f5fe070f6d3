"""The HTTP face of group classes: ``POST /`` joins, ``DELETE /`` leaves.

docs/contracts/join_class.md is the contract.

The body is ``{"accessCode": "..."}``, the student's Google ID token comes as
``Authorization: Bearer``; CORS follows ``ALLOWED_ORIGINS`` as list_events does. Every
refusal is a JSON body with a stable ``reason``; none carries the code, the token or
how close a wrong code came.
"""

from __future__ import annotations

import json

import flask

from shared.core.config import get_config
from shared.core.errors import ClasscalError
from shared.core.logs import get_logger
from shared.domain import group_classes
from shared.web import http
from shared.web.serving import Answers

log = get_logger(__name__)

METHODS = ("POST", "DELETE", "OPTIONS")
MAX_BODY_BYTES = 4096
MAX_TOKEN_LENGTH = 8192

STATUS = {
    "unauthenticated": 401,
    "email_not_verified": 403,
    "unknown_user": 403,
    "unknown_code": 404,
    "too_many_attempts": 429,
    "full": 409,
    "started": 409,
    "cancelled": 409,
    "not_group": 409,
    "host": 409,
}


class BadBody(Exception):
    pass


def _access_code(request: flask.Request) -> str:
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY_BYTES:
        raise BadBody(f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadBody('the body must be JSON: {"accessCode": "..."}') from None
    if not isinstance(body, dict):
        raise BadBody('the body must be a JSON object: {"accessCode": "..."}')
    code = body.get("accessCode")
    if not isinstance(code, str) or not code.strip():
        raise BadBody("accessCode must be a non-empty string")
    return code


def _bearer(request: flask.Request) -> str | None:
    header = request.headers.get("Authorization") or ""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    if token.count(".") != 2:
        return None
    return token


def _refusal(error: group_classes.Refused, cors: dict[str, str]) -> flask.Response:
    headers = dict(cors)
    status = STATUS.get(error.reason, 409)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return http.json_error(status, error.message, reason=error.reason, headers=headers)


def handle(request: flask.Request) -> flask.Response:
    config = get_config()
    if request.method == "OPTIONS":
        return http.preflight_response(
            request,
            config.allowed_origins,
            methods=METHODS,
            request_headers=("Content-Type", "Authorization"),
        )
    cors = http.cors_headers(request.headers.get("Origin"), config.allowed_origins)
    if request.method not in ("POST", "DELETE"):
        response = http.method_not_allowed(METHODS)
        response.headers.update(cors)
        return response
    try:
        code = _access_code(request)
    except BadBody as error:
        return http.json_error(
            400, str(error), reason="invalid_body", parameter="accessCode", headers=cors
        )
    token = _bearer(request)
    try:
        if token is None:
            raise group_classes.Refused(
                "unauthenticated", "send the student's Google ID token as 'Authorization: Bearer'"
            )
        act = group_classes.join if request.method == "POST" else group_classes.leave
        result = act(token, code)
    except group_classes.Refused as error:
        log.info(
            "group class request refused",
            extra={"outcome": "refused", "reason": error.reason, "method": request.method},
        )
        return _refusal(error, cors)
    return http.json_response(result.body(), 200, {**cors, "Cache-Control": "no-store"})


def _unavailable(_error: ClasscalError) -> flask.Response:
    return http.json_error(
        503,
        "the class cannot be joined right now; try again shortly",
        reason="unavailable",
        headers={"Vary": "Origin", "Retry-After": "5"},
    )


ANSWERS = Answers(
    unavailable=_unavailable,
    misconfigured=_unavailable,
    failed=lambda _error: http.json_error(500, "internal error", reason="internal"),
    internal=lambda: http.json_error(500, "internal error", reason="internal"),
)
