"""The admin's sign-in with Google, the session it opens, and the CSRF tokens it carries.

Sign-in asks Google for ``openid email`` only (online access, PKCE, a nonce), and lets
in only the account whose verified id_token says it is ``ADMIN_EMAIL``. Every OAuth
flow's ``state``, PKCE verifier and nonce travel in one short-lived signed cookie (the
*flow cookie*), so a callback is accepted only in the browser that started the flow,
and starting a flow writes nothing anywhere.

The session is a signed value (``shared.core.signing``) naming the admin and a random
session id, valid for at most ``SESSION_LIFETIME``; "Sign out" records a time before
which no session is accepted. The CSRF token of a session is an HMAC of its id: every
state-changing request must carry it. All keys derive from ``SESSION_SIGNING_KEY``
(kept in Secret Manager; deploy.sh creates it). Plain values in and out: the web layer
turns them into cookies and pages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core import signing
from shared.core.config import Config, get_config
from shared.core.errors import ConnectionRefused
from shared.core.logs import get_logger
from shared.google import oauth
from shared.stores import oauth_states

log = get_logger(__name__)

SESSION_LIFETIME = timedelta(hours=8)
FLOW_LIFETIME = timedelta(minutes=10)
SIGN_IN = "signin"
CONNECT = "connect"

_SESSION_PURPOSE = "classcal-admin-session"
_FLOW_PURPOSE = "classcal-oauth-flow"
_CSRF_PURPOSE = "classcal-csrf"
_STATE_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")
_MAX_CODE_LENGTH = 2048


@dataclass(frozen=True)
class Session:
    email: str
    session_id: str
    issued_at: datetime
    expires_at: datetime

    def __repr__(self) -> str:  # the id is what the CSRF token is made from
        return f"Session(email={self.email!r}, expires_at={self.expires_at.isoformat()!r})"


@dataclass(frozen=True)
class Flow:
    """A started OAuth flow, as its signed cookie carries it."""

    purpose: str  # SIGN_IN | CONNECT
    state: str
    verifier: str
    nonce: str
    session_id: str | None  # CONNECT: the session that started it
    expires_at: datetime

    def __repr__(self) -> str:
        return f"Flow(purpose={self.purpose!r})"


@dataclass(frozen=True)
class Started:
    """Where to send the browser, and the flow cookie to set on it."""

    url: str
    flow_cookie: str
    lifetime_seconds: int


@dataclass(frozen=True)
class SignedIn:
    email: str
    session_cookie: str
    lifetime_seconds: int


def _key(config: Config, purpose: str) -> bytes:
    return signing.derive_key(config.require("SESSION_SIGNING_KEY").encode(), purpose)


def refused(reason: str, http_status: int, title: str, advice: str) -> ConnectionRefused:
    return ConnectionRefused(
        f"refused: {reason}", code=reason, http_status=http_status, title=title, advice=advice
    )


# ---------------------------------------------------------------------------------------
# Flows


def new_flow(purpose: str, session: Session | None = None) -> Flow:
    return Flow(
        purpose=purpose,
        state=secrets.token_urlsafe(32),
        # 64 random bytes make an 86-character verifier, inside RFC 7636's 43-128.
        verifier=secrets.token_urlsafe(64),
        nonce=secrets.token_urlsafe(24),
        session_id=session.session_id if session else None,
        expires_at=datetime.now(UTC) + FLOW_LIFETIME,
    )


def seal_flow(flow: Flow) -> str:
    payload = {
        "p": flow.purpose,
        "s": flow.state,
        "v": flow.verifier,
        "n": flow.nonce,
        "sid": flow.session_id,
    }
    return signing.seal(
        payload, _key(get_config(), _FLOW_PURPOSE), _FLOW_PURPOSE, FLOW_LIFETIME.total_seconds()
    )


def open_flow(cookie: str | None) -> Flow | None:
    payload = signing.unseal(cookie, _key(get_config(), _FLOW_PURPOSE), _FLOW_PURPOSE)
    if payload is None:
        return None
    try:
        return Flow(
            purpose=str(payload["p"]),
            state=str(payload["s"]),
            verifier=str(payload["v"]),
            nonce=str(payload["n"]),
            session_id=payload.get("sid"),
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        )
    except (KeyError, TypeError, ValueError):
        return None


def flow_purpose(cookie: str | None) -> str | None:
    flow = open_flow(cookie)
    return flow.purpose if flow else None


def take_flow(params: Mapping[str, str], cookie: str | None, purpose: str) -> Flow:
    """The flow this callback finishes: its state must be the one in this browser's
    flow cookie. Refused (before any code is exchanged) otherwise."""
    state = params.get("state") or ""
    flow = open_flow(cookie)
    if not _STATE_SHAPE.match(state) or flow is None or flow.purpose != purpose:
        raise refused(
            "unknown_state",
            400,
            "This sign-in link cannot be used",
            "classcal did not start this sign-in in this browser, or it took longer than ten "
            "minutes. Nothing was changed. Start again from classcal's page, in the browser "
            "you finish it in.",
        )
    if not hmac.compare_digest(state.encode(), flow.state.encode()):
        log.warning("oauth state does not match this browser", extra={"reason": "state_mismatch"})
        raise refused(
            "state_mismatch",
            400,
            "This sign-in link cannot be used",
            "classcal did not start this sign-in in this browser (someone may have sent you "
            "a link). Nothing was changed. Start again from classcal's page.",
        )
    return flow


def code_of(params: Mapping[str, str]) -> str:
    code = params.get("code") or ""
    if not code or len(code) > _MAX_CODE_LENGTH:
        raise refused(
            "missing_code",
            400,
            "This link is incomplete",
            "Google's answer had no sign-in code. Start again from the start link.",
        )
    return code


# ---------------------------------------------------------------------------------------
# Sign-in


def start_sign_in() -> Started:
    config = get_config()
    flow = new_flow(SIGN_IN)
    url = oauth.sign_in_url(
        config,
        state=flow.state,
        verifier=flow.verifier,
        nonce=flow.nonce,
        login_hint=config.require("ADMIN_EMAIL"),
    )
    log.info("admin sign-in started")
    return Started(url, seal_flow(flow), int(FLOW_LIFETIME.total_seconds()))


def finish_sign_in(params: Mapping[str, str], flow_cookie: str | None) -> SignedIn:
    """A session for the admin, from Google's answer in the browser that started it."""
    config = get_config()
    if params.get("error"):
        raise refused(
            "sign_in_cancelled",
            400,
            "You are not signed in",
            "Google did not sign you in, so nothing changed. Try again from classcal's page.",
        )
    flow = take_flow(params, flow_cookie, SIGN_IN)
    code = code_of(params)
    try:
        grant = oauth.exchange(
            config, flow.verifier, code, config.require("GOOGLE_REDIRECT_URI"), oauth.SIGN_IN_SCOPES
        )
    except oauth.CodeRejected:
        raise refused(
            "code_rejected",
            400,
            "Google did not accept this sign-in",
            "The sign-in code expired or was already used. Sign in again.",
        ) from None
    email = _verified_email(config, grant, nonce=flow.nonce)
    admin = config.require("ADMIN_EMAIL").strip()
    if email is None or email.lower() != admin.lower():
        # Nothing is stored and nothing revoked: a sign-in grant holds no access to
        # anything, and revoking one of the admin's would end the calendar connection.
        log.warning(
            "sign-in refused", extra={"reason": "not_admin" if email else "unverified_identity"}
        )
        raise refused(
            "not_admin" if email else "unverified_identity",
            403,
            "This account may not use classcal's console",
            f"Only the school's admin account may sign in here. You signed in as {email}."
            if email
            else "Google's answer did not prove which account signed in. Sign in again.",
        )
    session = Session(
        email=email,
        session_id=secrets.token_urlsafe(24),
        issued_at=datetime.now(UTC),
        expires_at=datetime.now(UTC) + SESSION_LIFETIME,
    )
    log.info("admin signed in")
    return SignedIn(email, _seal_session(session), int(SESSION_LIFETIME.total_seconds()))


def _verified_email(config: Config, grant: oauth.Grant, *, nonce: str | None) -> str | None:
    """The account's email when Google's id_token proves it (signature, audience, expiry,
    issuer, a verified email and, for sign-in, the flow's nonce), else None."""
    if grant.id_token is None:
        return None
    try:
        claims = oauth.verify_id_token(config, grant.id_token)
    except oauth.InvalidIdToken:
        return None
    if nonce is not None and not hmac.compare_digest(
        str(claims.get("nonce") or "").encode(), nonce.encode()
    ):
        log.warning("id_token nonce does not match", extra={"reason": "nonce_mismatch"})
        return None
    email = str(claims.get("email") or "").strip()
    if claims.get("email_verified") not in (True, "true") or not email:
        log.warning("id_token email not verified", extra={"reason": "email_unverified"})
        return None
    return email


def verified_email(config: Config, grant: oauth.Grant) -> str | None:
    return _verified_email(config, grant, nonce=None)


# ---------------------------------------------------------------------------------------
# Sessions


def _seal_session(session: Session) -> str:
    return signing.seal(
        {"email": session.email, "sid": session.session_id},
        _key(get_config(), _SESSION_PURPOSE),
        _SESSION_PURPOSE,
        SESSION_LIFETIME.total_seconds(),
        now=session.issued_at.timestamp(),
    )


def read_session(cookie: str | None) -> Session | None:
    """The admin's session, when the cookie is genuine, unexpired, issued to the current
    ADMIN_EMAIL and newer than the last sign-out."""
    if not cookie:
        return None
    config = get_config()
    payload = signing.unseal(cookie, _key(config, _SESSION_PURPOSE), _SESSION_PURPOSE)
    if payload is None:
        return None
    email = str(payload.get("email") or "")
    session_id = str(payload.get("sid") or "")
    if not session_id or email.lower() != config.require("ADMIN_EMAIL").strip().lower():
        return None
    issued = datetime.fromtimestamp(payload["iat"], UTC)
    not_before = oauth_states.sessions_not_before()
    if not_before is not None and issued <= not_before:
        return None
    return Session(email, session_id, issued, datetime.fromtimestamp(payload["exp"], UTC))


def csrf_token(session: Session) -> str:
    mac = hmac.new(
        _key(get_config(), _CSRF_PURPOSE), session.session_id.encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_ok(session: Session, token: Any) -> bool:
    return isinstance(token, str) and hmac.compare_digest(
        token.encode(), csrf_token(session).encode()
    )


def sign_out(session: Session) -> None:
    """End every session issued until now (there is one admin)."""
    oauth_states.end_sessions(datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1))
    log.info("admin signed out")
