"""Connecting the school's Google account: the OAuth start, the callback and the status.

Only the signed-in admin (``shared.domain.admin_session``) starts a connection, from the
console; Google sends the browser back to ``/callback`` with a one-time code. The state
and the PKCE verifier travel in the flow's signed cookie, so ``/start`` writes nothing
and a callback is accepted only in the browser (and the session) that started it; a
callback spends its state in Firestore (``oauthStates``), once. The refresh token goes
to Secret Manager through ``shared.google.tokens``; Firestore keeps only a description
of the connection (``settings/googleConnection``: who, since when, which scopes, which
secret version, whether the stored permission still worked when last checked).

A grant is stored only when Google's verified id_token says the consenting account is
``ADMIN_EMAIL`` and its scopes are exactly the ones classcal asked for. It is revoked
only when a verified id_token proves it belongs to another account: with Google,
revoking one of the admin's own tokens withdraws the admin's whole grant, the stored
connection included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.core.cache import SingleFlightCache
from shared.core.config import Config, get_config
from shared.core.errors import (
    AdminReconnectRequired,
    ClasscalError,
    ConnectionRefused,
    GoogleUnavailable,
    TransientError,
)
from shared.core.logs import get_logger
from shared.domain import admin_session, sync
from shared.google import calendar, clients, oauth, tokens
from shared.stores import oauth_states

if TYPE_CHECKING:
    pass

log = get_logger(__name__)

STATE_LIFETIME = timedelta(minutes=10)
UPCOMING_SAMPLE = 25  # the success page counts upcoming events up to this many
PERMISSIONS_URL = "https://myaccount.google.com/permissions"

# Google may answer with the short aliases of the identity scopes.
_SCOPE_ALIASES = {
    "email": "https://www.googleapis.com/auth/userinfo.email",
    "profile": "https://www.googleapis.com/auth/userinfo.profile",
}
_ERROR_SHAPE = re.compile(r"^[a-z_]{1,64}$")


# ---------------------------------------------------------------------------------------
# Start


def start(session: admin_session.Session) -> admin_session.Started:
    """Google's authorization URL for the admin's connection, and its flow cookie."""
    config = get_config()
    flow = admin_session.new_flow(admin_session.CONNECT, session)
    url = oauth.authorization_url(
        config, state=flow.state, verifier=flow.verifier, login_hint=config.require("ADMIN_EMAIL")
    )
    log.info("oauth flow started")
    return admin_session.Started(
        url,
        admin_session.seal_flow(flow),
        int(admin_session.FLOW_LIFETIME.total_seconds()),
    )


# ---------------------------------------------------------------------------------------
# Callback


@dataclass(frozen=True)
class Connected:
    """What the callback achieved, for the success page."""

    email: str
    calendar_id: str
    secret_version: str
    upcoming_events: int | None  # None when the calendar check failed
    more_events: bool  # more than UPCOMING_SAMPLE upcoming events
    calendar_problem: str | None


def complete(
    params: Mapping[str, str], flow_cookie: str | None, session: admin_session.Session | None
) -> Connected:
    """Finish the flow from the callback's query parameters, or raise ConnectionRefused."""
    config = get_config()
    flow = admin_session.take_flow(params, flow_cookie, admin_session.CONNECT)
    if session is None or flow.session_id != session.session_id:
        raise _refused(
            "not_signed_in",
            403,
            "Sign in first",
            "Only the signed-in admin may connect Google, from the browser that started it. "
            "Nothing was changed. Sign in on classcal's page and choose Reconnect Google.",
        )
    if params.get("error"):
        # Spend the state anyway, so the same link cannot be replayed with a code later.
        _spend(flow)
        raise google_error(params["error"])
    code = admin_session.code_of(params)  # a malformed answer spends nothing
    _spend(flow)
    try:
        granted = oauth.exchange(config, flow.verifier, code, config.require("GOOGLE_REDIRECT_URI"))
    except oauth.CodeRejected:
        raise _refused(
            "code_rejected",
            400,
            "Google did not accept this sign-in",
            "The sign-in code expired or was already used. Start again from the start link.",
        ) from None
    email = _verified_admin_email(config, granted)
    _refuse_extra_scopes(granted)
    refresh_token = _require_grant(granted)

    version = tokens.store_refresh_token(refresh_token)
    scopes = sorted(_granted_scopes(granted))
    oauth_states.record_connection(email, scopes, version, config.calendar_id)
    forget_checks()
    upcoming, more, problem = _check_calendar(config, granted)
    if problem is None:
        _first_sync()
    log.info(
        "google account connected",
        extra={
            "email": email,
            "stored_version": version,
            "calendar_id": config.calendar_id,
            "upcoming_events": upcoming,
            "reason": "calendar_check_failed" if problem else None,
        },
    )
    return Connected(
        email=email,
        calendar_id=config.calendar_id,
        secret_version=version,
        upcoming_events=upcoming,
        more_events=more,
        calendar_problem=problem,
    )


def _spend(flow: admin_session.Flow) -> None:
    """Mark the flow's state used, once (a replayed callback is refused before any exchange)."""
    try:
        oauth_states.spend_state(flow.state, flow.expires_at)
    except oauth_states.StateRefused as refused:
        raise _state_refused(refused.reason, _STATE_ADVICE[refused.reason]) from None


def google_error(error: str) -> ConnectionRefused:
    if error == "access_denied":
        return _refused(
            "access_denied",
            400,
            "Access was not allowed",
            "You chose not to let classcal use the school's Google Calendar, so nothing "
            "changed. To connect, start again and choose Allow.",
        )
    shown = error if _ERROR_SHAPE.match(error) else "unknown"
    return _refused(
        f"google_error_{shown}",
        400,
        "Google could not complete the sign-in",
        f"Google answered with the error '{shown}'. Start again from the start link; if "
        "it happens again, check the OAuth client's settings in Google Cloud Console.",
    )


def _refused(reason: str, http_status: int, title: str, advice: str) -> ConnectionRefused:
    return ConnectionRefused(
        f"google connection refused: {reason}",
        code=reason,
        http_status=http_status,
        title=title,
        advice=advice,
    )


def _state_refused(reason: str, advice: str) -> ConnectionRefused:
    return _refused(reason, 400, "This sign-in link cannot be used", advice)


_STATE_ADVICE = {
    oauth_states.UNKNOWN: "classcal did not start this sign-in, or it was cleaned up long ago. "
    "Start again from the start link.",
    oauth_states.REUSED: "This sign-in link was already used. Start again from the start link.",
    oauth_states.EXPIRED: "This sign-in took longer than ten minutes. Start again from the "
    "start link and finish within ten minutes.",
}


def _verified_admin_email(config: Config, grant: oauth.Grant) -> str:
    """The consenting account's email, from a verified id_token, if it is ADMIN_EMAIL.

    The grant is revoked only when the verified id_token names another account. When
    the identity cannot be verified, it may be the admin's own grant: revoking it would
    withdraw the stored connection too, so it is left alone (and not stored).
    """
    admin_email = config.require("ADMIN_EMAIL")
    email = admin_session.verified_email(config, grant)
    if email is None:
        log.warning("google identity not verified", extra={"reason": "unverified_identity"})
        raise _refused(
            "unverified_identity",
            403,
            "Your Google account could not be confirmed",
            "Google's answer did not prove which account signed in, so nothing was stored. "
            f"Start again from classcal's page; to review what classcal may access, open "
            f"{PERMISSIONS_URL}.",
        )
    if email.lower() != admin_email.strip().lower():
        # Revoking is safe here: the grant belongs to another account, so the school's
        # stored connection is untouched.
        log.warning(
            "wrong account tried to connect", extra={"reason": "wrong_account", "email": email}
        )
        _revoke(grant)
        raise _refused(
            "wrong_account",
            403,
            "This is not the school's Google account",
            f"You signed in as {email}, but only {admin_email} may connect classcal. "
            "Nothing was stored and the permission was withdrawn. Start again and choose "
            f"{admin_email} on Google's page.",
        )
    return email


def _refuse_extra_scopes(grant: oauth.Grant) -> None:
    """A grant with more than classcal asked for (``include_granted_scopes``, a consent
    link with scopes added) is not stored: the token must reach only the calendar.
    It is the admin's own grant (just verified), so it is not revoked either."""
    extra = sorted(_granted_scopes(grant) - set(clients.OAUTH_SCOPES))
    if extra:
        log.warning("grant has scopes classcal did not ask for", extra={"reason": "extra_scopes"})
        raise _refused(
            "extra_scopes",
            400,
            "Google gave more access than classcal asked for",
            "This permission covers more than the calendar (for example your mail or files), "
            "so classcal did not keep it and nothing changed. If you did not start this "
            f"yourself, review the apps with access to your account at {PERMISSIONS_URL}, "
            "then reconnect from classcal's page.",
        )


def _granted_scopes(grant: oauth.Grant) -> set[str]:
    if grant.scope is None:
        return set(clients.OAUTH_SCOPES)
    return {_SCOPE_ALIASES.get(scope, scope) for scope in grant.scope}


def _require_grant(grant: oauth.Grant) -> str:
    """The refresh token, once every scope asked for is granted.

    The grant is not revoked here: it is the admin's own, and with Google revoking one
    token withdraws the whole grant, which would also end a working earlier connection.
    """
    missing = [s for s in clients.OAUTH_SCOPES if s not in _granted_scopes(grant)]
    if missing:
        log.warning(
            "consent lacked scopes", extra={"reason": "scope_not_granted", "missing": missing}
        )
        if clients.CALENDAR_SCOPE in missing:
            advice = (
                "On Google's page the box that lets classcal see and edit events in your "
                "calendars was not ticked, so classcal cannot create classes. Start again "
                "and tick every box before choosing Allow."
            )
        else:
            advice = (
                "Google did not share the account's email address, so classcal cannot "
                "confirm the account. Start again and tick every box before choosing Allow."
            )
        raise _refused("scope_not_granted", 400, "Calendar access was not given", advice)
    if grant.refresh_token is None:
        log.warning("google sent no refresh token", extra={"reason": "no_refresh_token"})
        raise _refused(
            "no_refresh_token",
            400,
            "Google did not give lasting access",
            "Google did not send the long-lived permission classcal needs. Open "
            f"{PERMISSIONS_URL}, remove classcal's access, then start again from the start "
            "link and choose Allow.",
        )
    return grant.refresh_token


def _first_sync() -> None:
    """Fill the busy-time mirror now, not at the next hourly maintenance (best effort)."""
    try:
        result = sync.sync_calendar(full=True)
    except ClasscalError as error:
        log.warning(
            f"first calendar sync failed; maintenance runs it again: {error.message}",
            extra={"reason": error.code},
        )
        return
    log.info("first calendar sync done", extra=result.log_fields())


def _log_calendar_problem(error: ClasscalError) -> None:
    log.warning("calendar check failed", extra={"reason": error.code, "detail": error.message})


def _check_calendar(config: Config, grant: oauth.Grant) -> tuple[int | None, bool, str | None]:
    """One real Calendar call with the new credentials: how many upcoming events it sees."""
    credentials = tokens.credentials_for(grant.refresh_token, access_token=grant.access_token)
    if grant.expires_at is not None:
        # google-auth compares naive UTC datetimes.
        credentials.expiry = grant.expires_at.replace(tzinfo=None)
    try:
        listing = calendar.list_events(
            credentials=credentials,
            timeMin=datetime.now(UTC).isoformat(),
            singleEvents=True,
            orderBy="startTime",
            maxResults=UPCOMING_SAMPLE,
        )
    except GoogleUnavailable as error:
        _log_calendar_problem(error)
        return None, False, "Google Calendar did not answer just now; the status page checks again."
    except ClasscalError as error:
        # Not found, forbidden, lacking a scope: a setting or a permission to fix.
        _log_calendar_problem(error)
        return (
            None,
            False,
            f"Google Calendar refused to list the calendar '{config.calendar_id}'. Check "
            "CALENDAR_ID and that this account can edit that calendar.",
        )
    items = [e for e in listing.get("items", []) if e.get("status") != "cancelled"]
    return len(items), bool(listing.get("nextPageToken")), None


# ---------------------------------------------------------------------------------------
# Status


@dataclass(frozen=True)
class ConnectionStatus:
    """What the status page shows. Never a token."""

    state: str  # connected | not_connected | reconnect_required | unknown
    email: str | None
    connected_at: datetime | None
    calendar_id: str
    scopes: tuple[str, ...]
    secret_version: str | None
    token_refreshes: bool | None  # None: could not be checked just now
    problem: str | None

    @property
    def connected(self) -> bool:
        return self.state in ("connected", "unknown")

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "connected": self.connected,
            "email": self.email,
            "connectedAt": self.connected_at.isoformat() if self.connected_at else None,
            "calendarId": self.calendar_id,
            "scopes": list(self.scopes),
            "secretVersion": self.secret_version,
            "tokenRefreshes": self.token_refreshes,
            "problem": self.problem,
        }


CHECK_TTL_SECONDS = 60.0
_checked = SingleFlightCache(max_entries=4)


def checked_status() -> ConnectionStatus:
    """``status()``, checked with Google at most once a minute per instance."""
    return _checked.get("status", CHECK_TTL_SECONDS, status).value  # type: ignore[no-any-return]


def forget_checks() -> None:
    """Forget this instance's cached checks (a new connection; tests)."""
    _checked.clear()


def healthy() -> bool:
    """Whether classcal is connected, from Firestore alone (no Google call), at most one
    read a minute per instance: a connection is recorded and the last check of its
    permission (the console's, or maintenance meeting a refusal) did not fail."""
    return bool(_checked.get("health", CHECK_TTL_SECONDS, _healthy).value[0])


def _healthy() -> tuple[bool]:
    record = oauth_states.read_connection()
    return (bool(record.get("secretVersion")) and record.get("tokenWorks") is not False,)


def status() -> ConnectionStatus:
    """Whether a token is stored and still refreshes (it tries), and who connected it.
    A verdict on the permission that differs from the recorded one is recorded, for
    ``healthy``."""
    record = oauth_states.read_connection()
    result = _status(record)
    verdict = result.token_refreshes
    if verdict is not None and record.get("tokenWorks") is not verdict:
        try:
            oauth_states.record_token_check(verdict)
        except TransientError:
            log.warning("could not record the token check", extra={"reason": "store_unavailable"})
    return result


def _status(record: dict[str, Any]) -> ConnectionStatus:
    config = get_config()
    described: dict[str, Any] = {
        "email": record.get("email"),
        "connected_at": record.get("connectedAt"),
        "calendar_id": record.get("calendarId") or config.calendar_id,
        "scopes": tuple(record.get("scopes") or ()),
    }
    try:
        stored = tokens.read_refresh_token()
    except AdminReconnectRequired:
        return ConnectionStatus(
            state="not_connected",
            secret_version=None,
            token_refreshes=None,
            problem="No Google account is connected. Sign in to the console and press "
            "Connect Google.",
            **described,
        )
    except TransientError:
        return ConnectionStatus(
            state="unknown",
            secret_version=None,
            token_refreshes=None,
            problem="Secret Manager did not answer, so the connection could not be checked.",
            **described,
        )
    checked = tokens.check_refresh(stored.refresh_token)
    if checked == tokens.REFUSED:
        log.warning("stored refresh token no longer works", extra={"reason": "invalid_grant"})
        return ConnectionStatus(
            state="reconnect_required",
            secret_version=stored.version,
            token_refreshes=False,
            problem="Google no longer accepts the stored permission (it was withdrawn or "
            "expired). Press Reconnect Google in the console.",
            **described,
        )
    if checked == tokens.UNCHECKED:
        return _unchecked(stored.version, described)
    return ConnectionStatus(
        state="connected",
        secret_version=stored.version,
        token_refreshes=True,
        problem=None,
        **described,
    )


def _unchecked(version: str, described: dict[str, Any]) -> ConnectionStatus:
    return ConnectionStatus(
        state="unknown",
        secret_version=version,
        token_refreshes=None,
        problem="Google's token endpoint did not answer, so the token could not be checked.",
        **described,
    )


# ---------------------------------------------------------------------------------------
# Shared pieces


def links() -> tuple[str, str]:
    """This function's start and status URLs, from its configured redirect URI."""
    redirect_uri = get_config().require("GOOGLE_REDIRECT_URI")
    base = redirect_uri.split("?", 1)[0].rstrip("/")
    if base.endswith("/callback"):
        base = base[: -len("/callback")]
    return f"{base}/start", f"{base}/"


def _revoke(grant: oauth.Grant) -> None:
    oauth.revoke(grant)
