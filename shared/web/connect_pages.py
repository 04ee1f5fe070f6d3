"""The HTTP face of connecting Google: ``/start``, ``/callback`` and the status page.

Every answer is a small page from ``shared.web.pages`` that never shows a token or a
code; failures are worded by ``ANSWERS`` under ``shared.web.serving``'s one rule.
"""

from __future__ import annotations

import flask

from shared.core.errors import ClasscalError, ConfigError, ConnectionRefused
from shared.core.logs import get_logger
from shared.domain import connection, delegation
from shared.web import pages
from shared.web.serving import Answers

log = get_logger(__name__)

PATHS = ("/", "/start", "/callback")


def send(answer: pages.Answer) -> flask.Response:
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


def _delegation(request: flask.Request, path: str) -> pages.Answer:
    """Service-account mode: every path tells the mode and how delegation is set up;
    /start and /callback start or finish nothing (409: there is no flow to run)."""
    status = delegation.delegation_status()
    if path == "/" and _wants_json(request):
        return pages.json_answer(status.as_json())
    return pages.delegation_status(status, status_code=200 if path == "/" else 409)


def _route(request: flask.Request, path: str) -> pages.Answer:
    if delegation.uses_delegation():
        return _delegation(request, path)
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


def handle(request: flask.Request) -> flask.Response:
    if request.method not in ("GET", "HEAD"):
        return send(pages.method_not_allowed())
    path = request.path.rstrip("/") or "/"
    if path not in PATHS:
        return send(pages.not_found())
    if request.method == "HEAD" and path != "/":
        # A HEAD (a link preview, a monitor) must not start a flow or spend a state.
        return send(pages.page("classcal", ["Open this address with GET."]))
    return send(_route(request, path))


def _unavailable(_error: ClasscalError) -> flask.Response:
    return send(pages.unavailable(_start_link()))


ANSWERS = Answers(
    unavailable=_unavailable,
    misconfigured=lambda _error: send(pages.misconfigured()),
    failed=lambda _error: send(pages.failed()),
    internal=lambda: send(pages.failed()),
)
