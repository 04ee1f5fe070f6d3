"""oauth_callback: the school admin connects classcal to the school's Google account.

``GET /start`` redirects to Google's consent page; ``GET /callback`` finishes the flow
and stores the refresh token; ``GET /`` tells whether classcal is connected (HTML, or
JSON with ``Accept: application/json``). The README's contract section has the details.
Every answer is a small page that never shows a token or a code.
"""

from __future__ import annotations

import flask
import functions_framework

from shared.core.errors import ClasscalError, ConfigError, ConnectionRefused, TransientError
from shared.core.logs import get_logger
from shared.domain import connection
from shared.web import pages

log = get_logger("oauth_callback")


def _send(answer: pages.Answer) -> flask.Response:
    return flask.Response(answer.body, status=answer.status, headers=answer.all_headers())


def _wants_json(request: flask.Request) -> bool:
    best = request.accept_mimetypes.best_match(
        ["text/html", "application/json"], default="text/html"
    )
    return best == "application/json"


def _start_link() -> str | None:
    try:
        return connection.links()[0]
    except ConfigError:
        return None


def _route(request: flask.Request, path: str) -> pages.Answer:
    start_url, status_url = connection.links()
    if path == "/start":
        return pages.redirect(connection.start())
    if path == "/callback":
        try:
            result = connection.complete(request.args.to_dict(flat=True))
        except ConnectionRefused as error:
            log.warning("google connection refused", extra={"reason": error.code})
            return pages.refused(error, start_url=start_url)
        return pages.connected(result, status_url=status_url)
    status = connection.status()
    if _wants_json(request):
        return pages.json_answer(status.as_json())
    return pages.connection_status(status, start_url=start_url)


@functions_framework.http
def oauth_callback(request: flask.Request) -> flask.Response:
    if request.method not in ("GET", "HEAD"):
        return _send(pages.method_not_allowed())
    path = request.path.rstrip("/") or "/"
    if path not in ("/", "/start", "/callback"):
        return _send(pages.not_found())
    if request.method == "HEAD" and path != "/":
        # A HEAD (a link preview, a monitor) must not start a flow or spend a state.
        return _send(pages.page("classcal", ["Open this address with GET."]))
    try:
        return _send(_route(request, path))
    except ConfigError as error:
        log.error(f"oauth_callback misconfigured: {error.message}", extra={"reason": error.code})
        return _send(pages.misconfigured())
    except TransientError as error:
        log.warning(f"oauth_callback unavailable: {error.message}", extra={"reason": error.code})
        return _send(pages.unavailable(_start_link()))
    except ClasscalError as error:
        log.error(f"oauth_callback failed: {error.message}", extra={"reason": error.code})
        return _send(pages.failed())
    except Exception:
        # functions-framework would send the exception's text to the browser: never that.
        log.exception("unexpected error in oauth_callback")
        return _send(pages.failed())
