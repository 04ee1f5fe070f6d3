"""HTTP plumbing any classcal HTTP function may reuse: JSON bodies, CORS, ETags.

Nothing here knows about calendars. Responses are Flask responses, the type
functions-framework hands to and expects from an HTTP function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import flask

from shared.core.encoding import json_bytes

JSON_TYPE = "application/json"

# Read by browsers from cross-origin responses only when listed (ETag is not safelisted).
EXPOSED_HEADERS = (
    "ETag",
    "Age",
    "Warning",
    "Retry-After",
    "X-Classcal-Stale",
    "X-Classcal-Synced-At",
)
PREFLIGHT_MAX_AGE_SECONDS = 3600  # browsers cap it lower anyway (Chromium: 2 h)


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> flask.Response:
    """A response carrying ``body`` as compact JSON (or ready-made JSON bytes)."""
    data = body if isinstance(body, bytes) else json_bytes(body)
    response = flask.Response(data, status=status, content_type=JSON_TYPE)
    response.headers.update(dict(headers or {}))
    return response


def json_error(
    status: int,
    message: str,
    *,
    reason: str,
    parameter: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> flask.Response:
    """``{"error": message, "reason": code[, "parameter": name]}``; never cached by anyone.

    ``error`` keeps the seed's error shape; ``reason`` is a stable code for programs.
    """
    body: dict[str, str] = {"error": message, "reason": reason}
    if parameter is not None:
        body["parameter"] = parameter
    return json_response(body, status, {"Cache-Control": "no-store", **dict(headers or {})})


def method_not_allowed(allowed: Iterable[str]) -> flask.Response:
    methods = ", ".join(allowed)
    return json_error(
        405,
        f"method not allowed; use {methods}",
        reason="method_not_allowed",
        headers={"Allow": methods},
    )


# --- CORS -------------------------------------------------------------------------------


def _origin_allowed(origin: str, allowed_origins: Iterable[str]) -> str | None:
    """The Access-Control-Allow-Origin value for ``origin``, or None if it is not allowed."""
    normalised = origin.strip().rstrip("/").lower()
    for allowed in allowed_origins:
        if allowed == "*":
            return "*"
        if allowed.rstrip("/").lower() == normalised:
            return origin
    return None


def cors_headers(origin: str | None, allowed_origins: Iterable[str]) -> dict[str, str]:
    """Headers for an actual (non-preflight) response.

    ``Vary: Origin`` is always present: the same URL answers differently per origin,
    and a shared cache must not hand one origin's answer to another.
    """
    headers = {"Vary": "Origin"}
    if origin:
        allow = _origin_allowed(origin, allowed_origins)
        if allow is not None:
            headers["Access-Control-Allow-Origin"] = allow
            headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
    return headers


def preflight_response(
    request: flask.Request,
    allowed_origins: Iterable[str],
    *,
    methods: Iterable[str],
    request_headers: Iterable[str] = ("Content-Type", "If-None-Match"),
    max_age: int = PREFLIGHT_MAX_AGE_SECONDS,
) -> flask.Response:
    """204 to an OPTIONS request; CORS grants only for an allowed origin.

    A disallowed origin gets the same 204 without any Access-Control-* header, which
    is how a browser learns it may not make the call.
    """
    allow_methods = ", ".join(methods)
    response = flask.Response(status=204)
    response.headers["Allow"] = allow_methods
    response.headers["Vary"] = (
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    )
    origin = request.headers.get("Origin")
    allow = _origin_allowed(origin, allowed_origins) if origin else None
    if allow is not None:
        response.headers["Access-Control-Allow-Origin"] = allow
        response.headers["Access-Control-Allow-Methods"] = allow_methods
        response.headers["Access-Control-Allow-Headers"] = ", ".join(request_headers)
        response.headers["Access-Control-Max-Age"] = str(max_age)
    return response


# --- ETags ------------------------------------------------------------------------------


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header matches ``etag``.

    If-None-Match uses the weak comparison (RFC 9110 13.1.2): ``W/`` prefixes are ignored.
    """
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))
