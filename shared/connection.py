"""Connecting the school's Google account: the OAuth start, the callback and the status.

The admin opens ``/start`` once; Google sends the browser back to ``/callback`` with a
one-time code. Everything that must survive between the two requests (the state and
the PKCE code verifier) is kept server-side in Firestore (``oauthStates``), keyed by a
hash of the state, so a stateless function on any instance can finish the flow and a
state can be used once only. The refresh token goes to Secret Manager through
``shared.tokens``; Firestore keeps only a description of the connection
(``settings/googleConnection``: who, since when, which scopes, which secret version).

Why no cookie binds the state to the browser: the grant is stored only when Google's
signed id_token says the consenting account is ``ADMIN_EMAIL``, so a flow started by
someone else and completed by the admin still connects the admin's own account, and
one completed by anyone else is refused and revoked.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from shared import calendar, google_clients, tokens
from shared.config import Config, get_config
from shared.errors import (
    AdminReconnectRequired,
    ClasscalError,
    ConnectionRefused,
    GoogleUnavailable,
    TransientError,
)
from shared.logs import get_logger

if TYPE_CHECKING:
    from google_auth_oauthlib.flow import Flow

log = get_logger(__name__)
# At DEBUG, requests-oauthlib and oauthlib log whole token requests and responses (the
# code, the verifier, the client secret, every token), and the Google Cloud clients log
# request payloads (the verifier written to Firestore, the refresh token added to
# Secret Manager). This module handles all of those: keep them quiet at any LOG_LEVEL.
for _chatty in ("requests_oauthlib", "oauthlib", "google.cloud", "google.api_core"):
    logging.getLogger(_chatty).setLevel(logging.WARNING)

STATES_COLLECTION = "oauthStates"
SETTINGS_COLLECTION = "settings"
CONNECTION_DOCUMENT = "googleConnection"
STATE_LIFETIME = timedelta(minutes=10)
UPCOMING_SAMPLE = 25  # the success page counts upcoming events up to this many
PERMISSIONS_URL = "https://myaccount.google.com/permissions"

# Google may answer with the short aliases of the identity scopes.
_SCOPE_ALIASES = {
    "email": "https://www.googleapis.com/auth/userinfo.email",
    "profile": "https://www.googleapis.com/auth/userinfo.profile",
}
_STATE_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")
_ERROR_SHAPE = re.compile(r"^[a-z_]{1,64}$")
_MAX_CODE_LENGTH = 2048
_TRANSIENT_OAUTH_ERRORS = frozenset({"server_error", "temporarily_unavailable"})


# ---------------------------------------------------------------------------------------
# Start


def start() -> str:
    """Store a fresh state and PKCE verifier, and return Google's authorization URL."""
    config = get_config()
    admin_email = config.require("ADMIN_EMAIL")
    state = secrets.token_urlsafe(32)
    # 64 random bytes make an 86-character verifier, inside RFC 7636's 43-128.
    verifier = secrets.token_urlsafe(64)
    flow = _flow(config, verifier)
    url, _ = flow.authorization_url(
        state=state,
        access_type="offline",  # a refresh token, so functions can act later
        prompt="consent",  # Google sends a refresh token only with a fresh consent
        login_hint=admin_email,
        # include_granted_scopes is deliberately not sent: it would fold every scope
        # this client was ever granted into the new token, and classcal wants a token
        # with exactly OAUTH_SCOPES and nothing more.
    )
    now = datetime.now(UTC)
    with google_clients.firestore_errors("store the OAuth state"):
        _states().document(_state_key(state)).create(
            {
                "codeVerifier": verifier,
                "redirectUri": config.require("GOOGLE_REDIRECT_URI"),
                "createdAt": now,
                # Firestore's TTL policy deletes expired states, but only within a day
                # or so: the callback checks expiresAt itself.
                "expiresAt": now + STATE_LIFETIME,
            }
        )
    log.info("oauth flow started")
    return str(url)


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


def complete(params: Mapping[str, str]) -> Connected:
    """Finish the flow from the callback's query parameters, or raise ConnectionRefused."""
    config = get_config()
    state = params.get("state") or ""
    if params.get("error"):
        # Spend the state anyway, so the same link cannot be replayed with a code later.
        if _STATE_SHAPE.match(state):
            with contextlib.suppress(ConnectionRefused, TransientError):
                _consume_state(state)
        raise _google_error(params["error"])
    code = params.get("code") or ""
    if not code or len(code) > _MAX_CODE_LENGTH:
        raise _refused(
            "missing_code",
            400,
            "This link is incomplete",
            "Google's answer had no sign-in code. Start again from the start link.",
        )
    verifier, redirect_uri = _consume_state(state)
    granted = _exchange(config, verifier, code, redirect_uri)
    email = _verified_admin_email(config, granted)
    refresh_token = _require_grant(granted)

    version = tokens.store_refresh_token(refresh_token)
    scopes = sorted(_granted_scopes(granted))
    _record_connection(email, scopes, version, config.calendar_id)
    upcoming, more, problem = _check_calendar(config, granted)
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


def _google_error(error: str) -> ConnectionRefused:
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


def _consume_state(state: str) -> tuple[str, str | None]:
    """Mark the state used, atomically; return its code verifier and redirect URI."""
    if not _STATE_SHAPE.match(state):
        raise _state_refused(
            "unknown_state",
            "classcal did not start this sign-in. Start again from the start link.",
        )
    from google.cloud import firestore

    client = google_clients.firestore_client()
    reference = _states().document(_state_key(state))

    @firestore.transactional
    def take(transaction: Any) -> tuple[str, str | None]:
        snapshot = reference.get(transaction=transaction)
        if not snapshot.exists:
            raise _state_refused(
                "unknown_state",
                "classcal did not start this sign-in, or it was cleaned up long ago. "
                "Start again from the start link.",
            )
        data = snapshot.to_dict() or {}
        if data.get("usedAt") is not None or not data.get("codeVerifier"):
            raise _state_refused(
                "reused_state",
                "This sign-in link was already used. Start again from the start link.",
            )
        expires_at = data.get("expiresAt")
        if not isinstance(expires_at, datetime) or expires_at <= datetime.now(UTC):
            raise _state_refused(
                "expired_state",
                "This sign-in took longer than ten minutes. Start again from the start link "
                "and finish within ten minutes.",
            )
        # The verifier is erased as the state is spent: a used state holds nothing.
        transaction.update(
            reference, {"usedAt": datetime.now(UTC), "codeVerifier": firestore.DELETE_FIELD}
        )
        return str(data["codeVerifier"]), data.get("redirectUri")

    with google_clients.firestore_errors("read the OAuth state"):
        return take(client.transaction())


@dataclass(frozen=True)
class _Grant:
    access_token: str
    refresh_token: str | None
    id_token: str | None
    scope: tuple[str, ...] | None  # None: Google did not say (it granted what was asked)
    expires_at: datetime | None

    def __repr__(self) -> str:  # never print the tokens
        return f"_Grant(scope={self.scope!r})"


def _exchange(config: Config, verifier: str, code: str, redirect_uri: str | None) -> _Grant:
    """Trade the code (with the verifier) for tokens at Google's token endpoint."""
    import requests
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error

    # Google requires the redirect URI of the authorization request, which is the one
    # kept with the state even if GOOGLE_REDIRECT_URI changed in between.
    flow = _flow(config, verifier, redirect_uri)
    flow.oauth2session.register_compliance_hook("access_token_response", _raise_if_unavailable)
    try:
        token = flow.fetch_token(
            code=code,
            include_client_id=True,  # client id and secret in the body, as Google documents
            timeout=config.google_http_timeout_seconds,
        )
    except OAuth2Error as error:
        if getattr(error, "error", None) in _TRANSIENT_OAUTH_ERRORS:
            raise GoogleUnavailable(f"the OAuth token endpoint answered {error.error}") from None
        # error.error is the OAuth error code ("invalid_grant", ...): safe to log.
        log.warning(
            "google refused the authorization code",
            extra={"reason": getattr(error, "error", None) or type(error).__name__},
        )
        raise _refused(
            "code_rejected",
            400,
            "Google did not accept this sign-in",
            "The sign-in code expired or was already used. Start again from the start link.",
        ) from None
    except requests.RequestException as error:
        raise GoogleUnavailable(
            f"the OAuth token endpoint did not answer: {type(error).__name__}"
        ) from None
    scope = token.get("scope")
    if isinstance(scope, str):
        scope = scope.split()
    expires_at = token.get("expires_at")
    return _Grant(
        access_token=str(token["access_token"]),
        refresh_token=token.get("refresh_token") or None,
        id_token=token.get("id_token") or None,
        scope=tuple(scope) if scope is not None else None,
        expires_at=datetime.fromtimestamp(float(expires_at), UTC) if expires_at else None,
    )


def _raise_if_unavailable(response: Any) -> Any:
    """requests-oauthlib hook: a 5xx or 429 from the token endpoint is worth a retry later.

    Without it oauthlib reads the error body as a refusal of the code itself.
    """
    if response.status_code >= 500 or response.status_code == 429:
        raise GoogleUnavailable(f"the OAuth token endpoint answered HTTP {response.status_code}")
    return response


def _verified_admin_email(config: Config, grant: _Grant) -> str:
    """The consenting account's email, from a verified id_token, if it is ADMIN_EMAIL."""
    from google.auth import exceptions as auth_exceptions
    from google.oauth2 import id_token

    admin_email = config.require("ADMIN_EMAIL")
    wrong_identity = _refused(
        "unverified_identity",
        403,
        "Your Google account could not be confirmed",
        "Google's answer did not prove which account signed in, so nothing was stored "
        "and the permission just given was withdrawn. Start again from the start link.",
    )
    if grant.id_token is None:
        _revoke(grant)
        raise wrong_identity
    try:
        claims = id_token.verify_token(
            grant.id_token,
            google_clients.http_request(),
            audience=config.require("AUTH_GOOGLE_ID"),
            certs_url=google_clients.endpoints(config).certs_url,
            clock_skew_in_seconds=10,
        )
    except auth_exceptions.TransportError:
        raise GoogleUnavailable("could not fetch Google's id_token certificates") from None
    except (ValueError, auth_exceptions.GoogleAuthError) as error:
        # Only the type: some of google-auth's messages quote the token itself.
        log.warning(
            "id_token failed verification",
            extra={"reason": "invalid_id_token", "detail": type(error).__name__},
        )
        _revoke(grant)
        raise wrong_identity from None
    if claims.get("iss") not in google_clients.GOOGLE_ISSUERS:
        log.warning("id_token from an unknown issuer", extra={"reason": "invalid_id_token"})
        _revoke(grant)
        raise wrong_identity
    email = str(claims.get("email") or "").strip()
    if claims.get("email_verified") not in (True, "true") or not email:
        log.warning("id_token email not verified", extra={"reason": "email_unverified"})
        _revoke(grant)
        raise _refused(
            "email_unverified",
            403,
            "Your Google account could not be confirmed",
            "Google has not verified this account's email address, so classcal cannot "
            f"tell whether it is {admin_email}. Nothing was stored and the permission was "
            "withdrawn.",
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


def _granted_scopes(grant: _Grant) -> set[str]:
    if grant.scope is None:
        return set(google_clients.OAUTH_SCOPES)
    return {_SCOPE_ALIASES.get(scope, scope) for scope in grant.scope}


def _require_grant(grant: _Grant) -> str:
    """The refresh token, once every scope asked for is granted.

    The grant is not revoked here: it is the admin's own, and with Google revoking one
    token withdraws the whole grant, which would also end a working earlier connection.
    """
    missing = [s for s in google_clients.OAUTH_SCOPES if s not in _granted_scopes(grant)]
    if missing:
        log.warning(
            "consent lacked scopes", extra={"reason": "scope_not_granted", "missing": missing}
        )
        if google_clients.CALENDAR_SCOPE in missing:
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


def _revoke(grant: _Grant) -> None:
    """Withdraw a grant classcal will not keep (best effort: a failure is only logged)."""
    from google.auth import exceptions as auth_exceptions

    token = grant.refresh_token or grant.access_token
    try:
        response = google_clients.http_request()(
            url=google_clients.endpoints().revoke_uri,
            method="POST",
            # In the body, not the query: a URL may end up in an access log.
            body=urlencode({"token": token}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=get_config().google_http_timeout_seconds,
        )
    except auth_exceptions.TransportError as error:
        log.warning(
            "could not revoke a refused grant",
            extra={"reason": "revoke_failed", "detail": type(error).__name__},
        )
        return
    if response.status != 200:
        log.warning(
            "could not revoke a refused grant",
            extra={"reason": "revoke_failed", "status": response.status},
        )


def _record_connection(email: str, scopes: list[str], version: str, calendar_id: str) -> None:
    with google_clients.firestore_errors("record the connection"):
        _connection_document().set(
            {
                "email": email,
                "connectedAt": datetime.now(UTC),
                "scopes": scopes,
                "secretVersion": version,
                "calendarId": calendar_id,
            }
        )


def _log_calendar_problem(error: ClasscalError) -> None:
    log.warning("calendar check failed", extra={"reason": error.code, "detail": error.message})


def _check_calendar(config: Config, grant: _Grant) -> tuple[int | None, bool, str | None]:
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


def status() -> ConnectionStatus:
    """Whether a token is stored and still refreshes (it tries), and who connected it."""
    from google.auth import exceptions as auth_exceptions

    config = get_config()
    record = _read_connection()
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
            problem="No Google account is connected. The admin must open the start link.",
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
    credentials = tokens.credentials_for(stored.refresh_token)
    try:
        credentials.refresh(google_clients.http_request())
    except auth_exceptions.RefreshError as error:
        if tokens.is_invalid_grant(error):
            log.warning("stored refresh token no longer works", extra={"reason": "invalid_grant"})
            return ConnectionStatus(
                state="reconnect_required",
                secret_version=stored.version,
                token_refreshes=False,
                problem="Google no longer accepts the stored permission (it was withdrawn or "
                "expired). The admin must open the start link again.",
                **described,
            )
        return _unchecked(stored.version, described)
    except auth_exceptions.TransportError:
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


def _read_connection() -> dict[str, Any]:
    try:
        snapshot = _connection_document().get()
    except Exception as error:
        # The description is nice to have; the token check below still runs.
        log.warning(
            "could not read the connection record",
            extra={"reason": "firestore_unavailable", "detail": type(error).__name__},
        )
        return {}
    return (snapshot.to_dict() or {}) if snapshot.exists else {}


# ---------------------------------------------------------------------------------------
# Shared pieces


def links() -> tuple[str, str]:
    """This function's start and status URLs, from its configured redirect URI."""
    redirect_uri = get_config().require("GOOGLE_REDIRECT_URI")
    base = redirect_uri.split("?", 1)[0].rstrip("/")
    if base.endswith("/callback"):
        base = base[: -len("/callback")]
    return f"{base}/start", f"{base}/"


def _flow(config: Config, verifier: str, redirect_uri: str | None = None) -> Flow:
    from google_auth_oauthlib.flow import Flow

    if config.google_sandbox_url:
        # oauthlib refuses plain-http endpoints; the local sandbox speaks plain http.
        # Never set outside sandbox mode: real Google endpoints are https.
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    # oauthlib raises a bare Warning (and drops the tokens) when Google grants fewer
    # scopes than asked, which is what an unticked checkbox does. classcal checks the
    # granted scopes itself (_require_grant) to tell the admin exactly what to do.
    os.environ["OAUTHLIB_RELAX_TOKEN_SCOPE"] = "1"  # noqa: S105 (a switch, not a secret)
    redirect_uri = redirect_uri or config.require("GOOGLE_REDIRECT_URI")
    endpoints = google_clients.endpoints(config)
    client_config = {
        "web": {
            "client_id": config.require("AUTH_GOOGLE_ID"),
            "client_secret": config.require("AUTH_GOOGLE_SECRET"),
            "auth_uri": endpoints.auth_uri,
            "token_uri": endpoints.token_uri,
            "redirect_uris": [redirect_uri],
        }
    }
    return Flow.from_client_config(
        client_config,
        scopes=list(google_clients.OAUTH_SCOPES),
        redirect_uri=redirect_uri,
        code_verifier=verifier,
        autogenerate_code_verifier=False,
    )


def _state_key(state: str) -> str:
    # Documents are keyed by a hash: reading the collection does not reveal live states.
    return hashlib.sha256(state.encode()).hexdigest()


def _states() -> Any:
    return google_clients.firestore_client().collection(STATES_COLLECTION)


def _connection_document() -> Any:
    return (
        google_clients.firestore_client()
        .collection(SETTINGS_COLLECTION)
        .document(CONNECTION_DOCUMENT)
    )
