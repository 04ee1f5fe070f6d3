"""list_events: the school's busy slots for the public booking page (HTTP GET).

``GET /?timeMin=...&timeMax=...`` answers ``[{"start": {"dateTime", "timeZone"},
"end": {"dateTime", "timeZone"}, "status"}]`` sorted by start. The README's contract
section says what each header and error means.
"""

from __future__ import annotations

import math

import flask
import functions_framework

from shared.core.config import get_config
from shared.core.errors import ClasscalError, ConfigError, InvalidParameter
from shared.core.logs import get_logger
from shared.domain import busy_slots
from shared.web import http as http_utils

log = get_logger("list_events")

METHODS = ("GET", "HEAD", "OPTIONS")
STALE_WARNING = '110 - "Response is Stale"'
UNAVAILABLE = "busy slots are unavailable right now; try again shortly"


def _unavailable(cors: dict[str, str], ttl: float) -> flask.Response:
    # A failure is remembered for the TTL: asking again sooner gets the same answer.
    retry_after = str(max(5, math.ceil(ttl)))
    return http_utils.json_error(
        503, UNAVAILABLE, reason="unavailable", headers={**cors, "Retry-After": retry_after}
    )


def _answer(
    request: flask.Request, served: busy_slots.Served, cors: dict[str, str]
) -> flask.Response:
    headers = {**cors, "ETag": served.payload.etag}
    if served.stale:
        headers.update(
            {
                "Cache-Control": "public, max-age=0",
                "Age": str(int(served.age)),
                "Warning": STALE_WARNING,
                "X-Classcal-Stale": "true",
            }
        )
    else:
        headers["Cache-Control"] = f"public, max-age={int(served.fresh_for)}"
    if http_utils.etag_matches(request.headers.get("If-None-Match"), served.payload.etag):
        return flask.Response(status=304, headers=headers)
    return http_utils.json_response(served.payload.body, 200, headers)


@functions_framework.http
def list_events(request: flask.Request) -> flask.Response:
    try:
        config = get_config()
    except ConfigError as error:
        log.error(f"busy slots unavailable: {error.message}", extra={"reason": error.code})
        return _unavailable({"Vary": "Origin"}, 0.0)
    if request.method == "OPTIONS":
        return http_utils.preflight_response(request, config.allowed_origins, methods=METHODS)
    cors = http_utils.cors_headers(request.headers.get("Origin"), config.allowed_origins)
    if request.method not in ("GET", "HEAD"):
        response = http_utils.method_not_allowed(METHODS)
        response.headers.update(cors)
        return response
    try:
        window = busy_slots.parse_window(
            request.args.to_dict(flat=False), window_days=config.list_window_days
        )
        served = busy_slots.busy_slots(window)
    except InvalidParameter as error:
        return http_utils.json_error(
            400, error.message, reason=error.code, parameter=error.parameter, headers=cors
        )
    except ClasscalError:
        return _unavailable(cors, config.list_cache_ttl_seconds)  # busy_slots logged why
    except Exception:
        log.exception("unexpected error while listing busy slots")
        return http_utils.json_error(500, "internal error", reason="internal", headers=cors)
    return _answer(request, served, cors)
