"""The HTTP face of the busy slots: CORS, the window from the query string, ETag/304,
the stale headers, and the 503 with ``Retry-After`` when nothing can be served."""

from __future__ import annotations

import math
from datetime import UTC

import flask

from shared.core.config import get_config
from shared.core.errors import ClasscalError, InvalidParameter
from shared.domain import busy_slots
from shared.web import http
from shared.web.serving import Answers

METHODS = ("GET", "HEAD", "OPTIONS")
STALE_WARNING = '110 - "Response is Stale"'
UNAVAILABLE = "busy slots are unavailable right now; try again shortly"


def _unavailable(cors: dict[str, str], ttl: float) -> flask.Response:
    # A failure is remembered for the TTL: asking again sooner gets the same answer.
    retry_after = str(max(5, math.ceil(ttl)))
    return http.json_error(
        503, UNAVAILABLE, reason="unavailable", headers={**cors, "Retry-After": retry_after}
    )


def _answer(
    request: flask.Request, served: busy_slots.Served, cors: dict[str, str]
) -> flask.Response:
    synced = served.synced_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    headers = {**cors, "ETag": served.payload.etag, "X-Classcal-Synced-At": synced}
    if served.stale:
        headers.update(
            {
                "Cache-Control": "public, max-age=0",
                "Warning": STALE_WARNING,
                "X-Classcal-Stale": "true",
            }
        )
    else:
        headers["Cache-Control"] = f"public, max-age={int(served.fresh_for)}"
    if http.etag_matches(request.headers.get("If-None-Match"), served.payload.etag):
        return flask.Response(status=304, headers=headers)
    return http.json_response(served.payload.body, 200, headers)


def handle(request: flask.Request) -> flask.Response:
    config = get_config()
    if request.method == "OPTIONS":
        return http.preflight_response(request, config.allowed_origins, methods=METHODS)
    cors = http.cors_headers(request.headers.get("Origin"), config.allowed_origins)
    if request.method not in ("GET", "HEAD"):
        response = http.method_not_allowed(METHODS)
        response.headers.update(cors)
        return response
    try:
        window = busy_slots.parse_window(
            request.args.to_dict(flat=False), window_days=config.list_window_days
        )
        served = busy_slots.busy_slots(window)
    except InvalidParameter as error:
        return http.json_error(
            400, error.message, reason=error.code, parameter=error.parameter, headers=cors
        )
    except ClasscalError:
        # busy_slots logged why; a failure is remembered for the TTL.
        return _unavailable(cors, config.list_cache_ttl_seconds)
    return _answer(request, served, cors)


def _failure(_error: ClasscalError) -> flask.Response:
    return _unavailable({"Vary": "Origin"}, 0.0)


ANSWERS = Answers(
    unavailable=_failure,
    misconfigured=_failure,
    failed=_failure,
    internal=lambda: http.json_error(500, "internal error", reason="internal"),
)
