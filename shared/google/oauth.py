"""Google's OAuth 2.0 endpoints: the consent URL, the code exchange, id_tokens, revocation.

Nothing here decides whether a grant is kept: ``shared.domain.connection`` does. Tokens
never leave this module in a log line or an error message.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from shared.core.config import Config, get_config
from shared.core.errors import GoogleUnavailable, PermanentError
from shared.core.logs import get_logger
from shared.google import clients

if TYPE_CHECKING:
    from google_auth_oauthlib.flow import Flow

log = get_logger(__name__)
# At DEBUG, requests-oauthlib and oauthlib log whole token requests and responses (the
# code, the verifier, the client secret, every token), and the Google Cloud clients log
# request payloads. Keep them quiet at any LOG_LEVEL.
for _chatty in ("requests_oauthlib", "oauthlib", "google.cloud", "google.api_core"):
    logging.getLogger(_chatty).setLevel(logging.WARNING)

_TRANSIENT_OAUTH_ERRORS = frozenset({"server_error", "temporarily_unavailable"})


@dataclass(frozen=True)
class Grant:
    access_token: str
    refresh_token: str | None
    id_token: str | None
    scope: tuple[str, ...] | None  # None: Google did not say (it granted what was asked)
    expires_at: datetime | None

    def __repr__(self) -> str:  # never print the tokens
        return f"Grant(scope={self.scope!r})"


class CodeRejected(PermanentError):
    """Google's token endpoint refused the authorization code (expired, used, ...)."""

    code = "code_rejected"


class InvalidIdToken(PermanentError):
    """An id_token that failed verification (signature, audience, expiry, issuer)."""

    code = "invalid_id_token"


SIGN_IN_SCOPES = ("openid", "email")


def flow(
    config: Config,
    verifier: str,
    redirect_uri: str | None = None,
    scopes: tuple[str, ...] = clients.OAUTH_SCOPES,
) -> Flow:
    from google_auth_oauthlib.flow import Flow

    if config.google_sandbox_url:
        # oauthlib refuses plain-http endpoints; the local sandbox speaks plain http.
        # Never set outside sandbox mode: real Google endpoints are https.
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    # oauthlib raises a bare Warning (and drops the tokens) when Google grants fewer
    # scopes than asked, which is what an unticked checkbox does. The domain checks the
    # granted scopes itself to tell the admin exactly what to do.
    os.environ["OAUTHLIB_RELAX_TOKEN_SCOPE"] = "1"  # noqa: S105 (a switch, not a secret)
    redirect_uri = redirect_uri or config.require("GOOGLE_REDIRECT_URI")
    endpoints = clients.endpoints(config)
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
        scopes=list(scopes),
        redirect_uri=redirect_uri,
        code_verifier=verifier,
        autogenerate_code_verifier=False,
    )


def authorization_url(config: Config, *, state: str, verifier: str, login_hint: str) -> str:
    url, _ = flow(config, verifier).authorization_url(
        state=state,
        access_type="offline",  # a refresh token, so functions can act later
        prompt="consent",  # Google sends a refresh token only with a fresh consent
        login_hint=login_hint,
        # include_granted_scopes is deliberately not sent: it would fold every scope
        # this client was ever granted into the new token, and classcal wants a token
        # with exactly OAUTH_SCOPES and nothing more.
    )
    return str(url)


def sign_in_url(config: Config, *, state: str, verifier: str, nonce: str, login_hint: str) -> str:
    """Google's consent URL for signing the admin in: ``openid email`` only, online
    access (no refresh token), PKCE, and a nonce the id_token must echo."""
    url, _ = flow(config, verifier, scopes=SIGN_IN_SCOPES).authorization_url(
        state=state,
        access_type="online",
        nonce=nonce,
        login_hint=login_hint,
        prompt="select_account",
    )
    return str(url)


def exchange(
    config: Config,
    verifier: str,
    code: str,
    redirect_uri: str | None,
    scopes: tuple[str, ...] = clients.OAUTH_SCOPES,
) -> Grant:
    """Trade the code (with the verifier) for tokens at Google's token endpoint."""
    import requests
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error

    # Google requires the redirect URI of the authorization request, which is the one
    # kept with the state even if GOOGLE_REDIRECT_URI changed in between.
    session_flow = flow(config, verifier, redirect_uri, scopes)
    session_flow.oauth2session.register_compliance_hook(
        "access_token_response", _raise_if_unavailable
    )
    try:
        token = session_flow.fetch_token(
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
        raise CodeRejected("Google refused the authorization code") from None
    except requests.RequestException as error:
        raise GoogleUnavailable(
            f"the OAuth token endpoint did not answer: {type(error).__name__}"
        ) from None
    scope = token.get("scope")
    if isinstance(scope, str):
        scope = scope.split()
    expires_at = token.get("expires_at")
    return Grant(
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


def verify_id_token(config: Config, token: str) -> dict[str, Any]:
    """The id_token's claims, checked with google-auth (signature, audience, expiry) and
    for Google's issuer; InvalidIdToken when any check fails."""
    from google.auth import exceptions as auth_exceptions
    from google.oauth2 import id_token

    try:
        claims = id_token.verify_token(
            token,
            clients.http_request(),
            audience=config.require("AUTH_GOOGLE_ID"),
            certs_url=clients.endpoints(config).certs_url,
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
        raise InvalidIdToken("the id_token failed verification") from None
    if claims.get("iss") not in clients.GOOGLE_ISSUERS:
        log.warning("id_token from an unknown issuer", extra={"reason": "invalid_id_token"})
        raise InvalidIdToken("the id_token comes from an unknown issuer")
    return dict(claims)


def revoke(grant: Grant) -> None:
    """Withdraw a grant classcal will not keep (best effort: a failure is only logged)."""
    from google.auth import exceptions as auth_exceptions

    token = grant.refresh_token or grant.access_token
    try:
        response = clients.http_request()(
            url=clients.endpoints().revoke_uri,
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
