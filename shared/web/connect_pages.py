"""The HTTP face of oauth_callback: the anonymous page, sign-in, the admin's console, its
actions, ``/healthz``, and connecting Google (``/start``, ``/callback``).

- ``GET /``: signed in, the console; otherwise only whether classcal is connected and
  "Sign in with Google" (JSON ``{"connected": ...}`` with ``Accept: application/json``).
- ``GET /healthz``: ``{"connected": true|false}``, from Firestore alone, cached a minute.
- ``GET /signin``: to Google for ``openid email``; ``GET /callback`` finishes it (or a
  connection: the flow cookie says which).
- ``POST /start``, ``/retry``, ``/signout``: signed in, with the session's CSRF token.

Cookies are ``__Host-`` (Secure, Path=/, no Domain), HttpOnly and SameSite=Lax. Every
answer is a small page that never shows a token or a code; failures are worded by
``ANSWERS`` under ``shared.web.serving``'s one rule.
"""

from __future__ import annotations

import flask

from shared.core.config import get_config
from shared.core.errors import ClasscalError, ConfigError, ConnectionRefused
from shared.core.logs import get_logger
from shared.domain import admin_session, connection, console, delegation
from shared.web import console_pages, pages
from shared.web.serving import Answers

log = get_logger(__name__)

SESSION_COOKIE = "__Host-classcal-session"
FLOW_COOKIE = "__Host-classcal-flow"
GET_PATHS = ("/", "/healthz", "/signin", "/start", "/callback")
POST_PATHS = ("/start", "/retry", "/invite", "/signout")
MAX_FORM_BYTES = 4096


def cookie(name: str, value: str, max_age: int) -> str:
    return f"{name}={value}; Max-Age={max_age}; Path=/; Secure; HttpOnly; SameSite=Lax"


def send(answer: pages.Answer) -> flask.Response:
    response = flask.Response(answer.body, status=answer.status, headers=answer.all_headers())
    for value in answer.cookies:
        response.headers.add("Set-Cookie", value)
    return response


def _wants_json(request: flask.Request) -> bool:
    best = request.accept_mimetypes.best_match(
        ["text/html", "application/json"], default="text/html"
    )
    return best == "application/json"


def _base() -> str:
    return connection.links()[1].rstrip("/")


def _start_link() -> str | None:
    try:
        return connection.links()[0]
    except ConfigError:
        return None


def _session(request: flask.Request) -> admin_session.Session | None:
    return admin_session.read_session(request.cookies.get(SESSION_COOKIE))


def _anonymous(request: flask.Request, status: int = 200) -> pages.Answer:
    connected = connection.healthy()
    if _wants_json(request):
        return pages.json_answer({"connected": connected}, status=status)
    return console_pages.anonymous(connected, sign_in_url=f"{_base()}/signin", status=status)


def _redirect_to_google(started: admin_session.Started) -> pages.Answer:
    return pages.redirect(started.url).with_cookies(
        cookie(FLOW_COOKIE, started.flow_cookie, started.lifetime_seconds)
    )


def _callback(request: flask.Request) -> pages.Answer:
    params = request.args.to_dict(flat=True)
    flow_cookie = request.cookies.get(FLOW_COOKIE)
    purpose = admin_session.flow_purpose(flow_cookie)
    base = _base()
    if purpose == admin_session.SIGN_IN:
        cleared = cookie(FLOW_COOKIE, "", 0)
        try:
            signed_in = admin_session.finish_sign_in(params, flow_cookie)
        except ConnectionRefused as error:
            log.warning("admin sign-in refused", extra={"reason": error.code})
            return pages.refused(error, start_url=f"{base}/").with_cookies(cleared)
        return pages.see_other(f"{base}/").with_cookies(
            cleared,
            cookie(SESSION_COOKIE, signed_in.session_cookie, signed_in.lifetime_seconds),
        )
    start_url = f"{base}/"
    try:
        if purpose is None and params.get("error") and not flow_cookie:
            # Google's error for a flow this browser no longer knows: nothing to spend.
            raise connection.google_error(params["error"])
        result = connection.complete(params, flow_cookie, _session(request))
    except ConnectionRefused as error:
        log.warning("google connection refused", extra={"reason": error.code})
        return pages.refused(error, start_url=start_url)
    return pages.connected(result, status_url=start_url)


def _console(request: flask.Request, session: admin_session.Session) -> pages.Answer:
    if _wants_json(request):
        return pages.json_answer(connection.checked_status().as_json())
    cursors = console.Cursors(
        problems=request.args.get("after") or None,
        refunds=request.args.get("refunds_after") or None,
        guests=request.args.get("guests_after") or None,
    )
    view = console.load(cursors)
    notice = console_pages.notice_text(request.args.get("retried"), request.args.get("invited"))
    return console_pages.console_page(
        view,
        email=session.email,
        csrf=admin_session.csrf_token(session),
        base_url=_base(),
        zone=get_config().timezone,
        notice=notice,
        cursors=cursors,
    )


def _get(request: flask.Request, path: str) -> pages.Answer:
    if path == "/healthz":
        return pages.json_answer({"connected": connection.healthy()})
    if path == "/signin":
        return _redirect_to_google(admin_session.start_sign_in())
    if path == "/callback":
        return _callback(request)
    session = _session(request)
    if session is None:
        return _anonymous(request, status=403 if path == "/start" else 200)
    if path == "/start":
        return console_pages.confirm_start(
            start_url=f"{_base()}/start", csrf=admin_session.csrf_token(session)
        )
    return _console(request, session)


def _forbidden(title: str, advice: str) -> pages.Answer:
    return pages.page(
        title, [advice], status=403, links=[pages.Link("classcal", f"{_base()}/")], tone="bad"
    )


def _post(request: flask.Request, path: str) -> pages.Answer:
    session = _session(request)
    if session is None:
        return _forbidden(
            "Sign in first",
            "Your session is missing or has expired, so nothing was changed. Sign in again.",
        )
    if (request.content_length or 0) > MAX_FORM_BYTES:
        return _forbidden("This form is too large", "Nothing was changed.")
    form = request.form
    if not admin_session.csrf_ok(session, form.get("csrf")):
        log.warning("form refused: bad CSRF token", extra={"reason": "csrf_mismatch"})
        return _forbidden(
            "This form has expired",
            "The form did not come from your current console page, so nothing was changed. "
            "Open the console again and repeat the action.",
        )
    base = _base()
    if path == "/start":
        return _redirect_to_google(connection.start(session))
    if path == "/signout":
        admin_session.sign_out(session)
        return pages.see_other(f"{base}/").with_cookies(cookie(SESSION_COOKIE, "", 0))
    if path == "/invite":
        invited = console.invite_guests(str(form.get("booking") or ""))
        return pages.see_other(f"{base}/?invited={invited.outcome}#guests")
    retried = console.retry(str(form.get("booking") or ""))
    return pages.see_other(f"{base}/?retried={retried.outcome}")


def _delegation(request: flask.Request, path: str) -> pages.Answer:
    """Service-account mode: every path tells the mode and how delegation is set up;
    /start and /callback start or finish nothing (409: there is no flow to run)."""
    status = delegation.delegation_status()
    if path == "/" and _wants_json(request):
        return pages.json_answer(status.as_json())
    return pages.delegation_status(status, status_code=200 if path == "/" else 409)


def handle(request: flask.Request) -> flask.Response:
    path = request.path.rstrip("/") or "/"
    if delegation.uses_delegation() and (
        path in ("/start", "/callback") or (path == "/" and request.method == "GET")
    ):
        return send(_delegation(request, path))
    if request.method == "POST":
        if path not in POST_PATHS:
            return send(pages.method_not_allowed())
        return send(_post(request, path))
    if request.method not in ("GET", "HEAD"):
        allowed = "GET, HEAD, POST" if path in POST_PATHS else "GET, HEAD"
        return send(pages.method_not_allowed(allowed))
    if path not in GET_PATHS:
        return send(pages.not_found())
    if request.method == "HEAD" and path not in ("/", "/healthz"):
        # A HEAD (a link preview, a monitor) must not start a flow or spend a state.
        return send(pages.page("classcal", ["Open this address with GET."]))
    return send(_get(request, path))


def _unavailable(_error: ClasscalError) -> flask.Response:
    return send(pages.unavailable(_start_link()))


ANSWERS = Answers(
    unavailable=_unavailable,
    misconfigured=lambda _error: send(pages.misconfigured()),
    failed=lambda _error: send(pages.failed()),
    internal=lambda: send(pages.failed()),
)
