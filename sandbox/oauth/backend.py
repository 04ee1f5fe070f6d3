"""The OAuth backend: registered clients, consent grants, authorization codes, refresh
and access tokens, the test knobs, and the key that signs id_tokens.

Every read and write of the state happens under `lock`. The signing key outlives
`reset()`, as Google's keys outlive a test.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from sandbox.core import timeutil
from sandbox.core.ids import random_token
from sandbox.core.signing import SigningKey, b64url
from sandbox.core.stats import Stats
from sandbox.oauth import jwt_bearer
from sandbox.oauth.errors import ConsentPageError, OAuthError
from sandbox.oauth.models import (
    AccessToken,
    AuthCode,
    ConsentRequest,
    Grant,
    IssuedTokens,
    OAuthClient,
    OAuthKnobs,
    TokenRequest,
)

ISSUER = "https://accounts.google.com"
USERINFO_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
USERINFO_PROFILE = "https://www.googleapis.com/auth/userinfo.profile"
# Google answers with the long names of these short scopes, which is why
# oauthlib warns "Scope has changed" unless OAUTHLIB_RELAX_TOKEN_SCOPE is set.
SCOPE_ALIASES = {"email": USERINFO_EMAIL, "profile": USERINFO_PROFILE}
DEFAULT_EMAIL = "admin@school.test"
CODE_TTL = timedelta(minutes=10)
ID_TOKEN_TTL = 3600
REVOKED_DESCRIPTION = "Token has been expired or revoked."
_PKCE_VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


def normalize_scopes(raw: str | list[str]) -> list[str]:
    """Scopes in request order, aliases expanded, duplicates dropped."""
    items = raw.split() if isinstance(raw, str) else [s for part in raw for s in part.split()]
    result: list[str] = []
    for item in items:
        scope = SCOPE_ALIASES.get(item, item)
        if scope not in result:
            result.append(scope)
    return result


def subject_for(email: str) -> str:
    """A stable numeric `sub`, 21 digits like Google's."""
    digest = hashlib.sha256(email.lower().encode()).digest()
    return str(10**20 + int.from_bytes(digest[:8], "big") % (9 * 10**20))


class OAuthBackend:
    def __init__(
        self,
        *,
        stats: Stats | None = None,
        keys: SigningKey | None = None,
        service_account_keys: jwt_bearer.KeyLookup | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.stats = stats if stats is not None else Stats()
        self.keys = keys if keys is not None else SigningKey()
        self._service_account_keys = service_account_keys or (lambda _email: None)
        self._grant_types: dict[str, Callable[[Any, TokenRequest], IssuedTokens]] = {
            "authorization_code": self._code_grant,
            "refresh_token": self._refresh_grant,
            jwt_bearer.GRANT_TYPE: self._jwt_bearer_grant,
        }
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.clients: dict[str, OAuthClient] = {}
            self.grants: dict[str, Grant] = {}
            self.refresh_tokens: dict[str, str] = {}  # refresh token -> grant id
            self.access_tokens: dict[str, AccessToken] = {}
            self.codes: dict[str, AuthCode] = {}
            # (client_id, email) -> scopes granted so far, for include_granted_scopes.
            self.granted_scopes: dict[tuple[str, str], list[str]] = {}
            self.knobs = OAuthKnobs()
            self.delegation = jwt_bearer.DomainDelegation()

    # --- set-up, for the control API ---------------------------------------------

    def register_client(self, client_id: str, secret: str, redirect_uris: list[str]) -> None:
        with self.lock:
            self.clients[client_id] = OAuthClient(client_id, secret, list(redirect_uris))

    def has_client(self, client_id: str) -> bool:
        with self.lock:
            return client_id in self.clients

    def set_knobs(self, knobs: OAuthKnobs) -> None:
        with self.lock:
            self.knobs = knobs

    def issue_offline(self, email: str, client_id: str, scope: str | list[str]) -> IssuedTokens:
        """Tokens as if `email` had consented offline to `client_id`."""
        with self.lock:
            grant = self._create_grant(client_id, email, normalize_scopes(scope), offline=True)
            access = self._issue_access_token(grant, grant.scopes)
            return self._issued(grant, access, include_refresh_token=True)

    # --- what other APIs ask ------------------------------------------------------

    def access_info(self, token: str) -> tuple[str, frozenset[str]] | None:
        """(email, scopes) of a live access token; None when unknown, expired or revoked."""
        with self.lock:
            access = self.access_tokens.get(token)
            grant = self.grants.get(access.grant_id) if access else None
        if access is None or grant is None or grant.revoked or timeutil.now() >= access.expires_at:
            return None
        return access.email, access.scopes

    # --- consent screen -----------------------------------------------------------

    def consent_client(self, client_id: str, redirect_uri: str) -> OAuthClient:
        with self.lock:
            client = self.clients.get(client_id)
        if client is None:
            raise ConsentPageError(
                400, "invalid_client", f"The OAuth client was not found: {client_id}"
            )
        if redirect_uri not in client.redirect_uris:
            raise ConsentPageError(
                400,
                "redirect_uri_mismatch",
                f"You can't sign in to this app because it doesn't comply with Google's OAuth "
                f"2.0 policy. redirect_uri={redirect_uri}",
            )
        return client

    def authorization_request(self, args: Mapping[str, str]) -> ConsentRequest:
        """An authorization request (the /o/oauth2/v2/auth query), checked."""
        client = self.consent_client(args.get("client_id", ""), args.get("redirect_uri", ""))
        if args.get("response_type") != "code":
            raise ConsentPageError(
                400,
                "unsupported_response_type",
                f"Invalid response_type: {args.get('response_type')}",
            )
        scopes = normalize_scopes(args.get("scope", ""))
        if not scopes:
            raise ConsentPageError(400, "invalid_request", "Missing required parameter: scope")
        method = args.get("code_challenge_method")
        challenge = args.get("code_challenge")
        if method is not None and method not in ("S256", "plain"):
            raise ConsentPageError(
                400, "invalid_request", f"Invalid code_challenge_method: {method}"
            )
        if method is not None and not challenge:
            raise ConsentPageError(400, "invalid_request", "Missing code_challenge")
        access_type = args.get("access_type", "online")
        if access_type not in ("online", "offline"):
            raise ConsentPageError(400, "invalid_request", f"Invalid access_type: {access_type}")
        hidden = {
            "client_id": client.client_id,
            "redirect_uri": args["redirect_uri"],
            "state": args.get("state"),
            "access_type": access_type,
            "code_challenge": challenge,
            "code_challenge_method": method or ("plain" if challenge else None),
            "include_granted_scopes": args.get("include_granted_scopes"),
            "nonce": args.get("nonce"),
            "prompt": args.get("prompt"),
        }
        email = args.get("login_hint") or DEFAULT_EMAIL
        return ConsentRequest(client.client_id, args["redirect_uri"], scopes, email, hidden)

    def issue_code(
        self,
        client_id: str,
        redirect_uri: str,
        email: str,
        scopes: list[str],
        *,
        access_type: str = "online",
        code_challenge: str | None = None,
        code_challenge_method: str | None = None,
        nonce: str | None = None,
        include_granted_scopes: bool = False,
        prompt: str | None = None,
    ) -> AuthCode:
        """The user allowed: an authorization code for the scopes they left ticked."""
        if not _EMAIL_RE.match(email):
            raise ConsentPageError(400, "invalid_request", f"Not an email address: {email}")
        scopes = normalize_scopes(scopes)
        with self.lock:
            # Google shows the consent screen when asked to, or when the user has not
            # consented to this client yet (none granted, or all revoked).
            consent_shown = "consent" in (prompt or "").split() or not self._live_grants(
                client_id, email
            )
            if include_granted_scopes:
                for scope in self.granted_scopes.get((client_id, email), []):
                    if scope not in scopes:
                        scopes.append(scope)
            code = AuthCode(
                code=random_token("4/0", 70),
                client_id=client_id,
                email=email,
                scopes=tuple(scopes),
                redirect_uri=redirect_uri,
                access_type=access_type,
                code_challenge=code_challenge,
                code_challenge_method=code_challenge_method,
                nonce=nonce,
                expires_at=timeutil.now() + CODE_TTL,
                consent_shown=consent_shown,
            )
            self.codes[code.code] = code
        return code

    # --- token endpoint -----------------------------------------------------------

    def token(
        self, request: TokenRequest, client_id: str | None, client_secret: str | None
    ) -> IssuedTokens:
        """A token request from an authenticated client, by grant type."""
        if request.grant_type in self._grant_types:
            self.stats.count("requests", f"oauth.token.{request.grant_type}")
        with self.lock:
            # A JWT-bearer request authenticates by its signed assertion, not a client.
            client = (
                None
                if request.grant_type == jwt_bearer.GRANT_TYPE
                else self._authenticate_client(client_id, client_secret)
            )
            grant_type = self._grant_types.get(request.grant_type)
            if grant_type is not None:
                return grant_type(client, request)
        raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {request.grant_type}")

    def _authenticate_client(self, client_id: str | None, client_secret: str | None) -> OAuthClient:
        client = self.clients.get(client_id or "")
        if client is None:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        if not secrets.compare_digest(client.client_secret, client_secret or ""):
            raise OAuthError(401, "invalid_client", "Unauthorized")
        return client

    def _code_grant(self, client: OAuthClient, request: TokenRequest) -> IssuedTokens:
        code = self.codes.get(request.code)
        if code is None or code.client_id != client.client_id:
            raise OAuthError(400, "invalid_grant", "Malformed auth code.")
        if code.used or timeutil.now() >= code.expires_at:
            raise OAuthError(400, "invalid_grant", "Bad Request")
        if request.redirect_uri != code.redirect_uri:
            raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
        if code.code_challenge is not None:
            _check_pkce(code, request.code_verifier)
        code.used = True
        consented = code.consent_shown or self.knobs.refresh_token_without_consent
        offline = code.access_type == "offline" and consented and not self.knobs.omit_refresh_token
        grant = self._create_grant(client.client_id, code.email, code.scopes, offline, code.nonce)
        access = self._issue_access_token(grant, grant.scopes)
        return self._issued(grant, access, include_refresh_token=offline)

    def _refresh_grant(self, client: OAuthClient, request: TokenRequest) -> IssuedTokens:
        grant_id = self.refresh_tokens.get(request.refresh_token)
        grant = self.grants.get(grant_id) if grant_id else None
        if grant is None or grant.revoked:
            raise OAuthError(400, "invalid_grant", REVOKED_DESCRIPTION)
        if grant.client_id != client.client_id:
            raise OAuthError(401, "unauthorized_client", "Unauthorized")
        scopes = grant.scopes
        if request.scope:
            requested = normalize_scopes(request.scope)
            if not set(requested) <= set(grant.scopes):
                raise OAuthError(400, "invalid_scope", "Some requested scopes were invalid.")
            scopes = tuple(requested)
        access = self._issue_access_token(grant, scopes)
        return self._issued(grant, access, include_refresh_token=False)

    def _jwt_bearer_grant(self, _client: None, request: TokenRequest) -> IssuedTokens:
        """A service account's assertion, acting as itself or (with `sub`) as a user."""
        accepted = jwt_bearer.check_assertion(
            request.assertion,
            keys_of=self._service_account_keys,
            audiences=tuple(dict.fromkeys((request.token_url, jwt_bearer.GOOGLE_TOKEN_URI))),
            delegation=self.delegation,
            now=int(timeutil.now().timestamp()),
        )
        grant = Grant(
            id=random_token("g", 16),
            client_id=accepted.client_id,
            email=accepted.email,
            scopes=accepted.scopes,
            refresh_token=None,
        )
        self.grants[grant.id] = grant
        access = self._issue_access_token(grant, grant.scopes)
        return self._issued(grant, access, include_refresh_token=False)

    def _create_grant(
        self,
        client_id: str,
        email: str,
        scopes: tuple[str, ...] | list[str],
        offline: bool,
        nonce: str | None = None,
    ) -> Grant:
        grant = Grant(
            id=random_token("g", 16),
            client_id=client_id,
            email=email,
            scopes=tuple(scopes),
            refresh_token=random_token("1//0", 100) if offline else None,
            nonce=nonce,
        )
        self.grants[grant.id] = grant
        if grant.refresh_token:
            self.refresh_tokens[grant.refresh_token] = grant.id
        remembered = self.granted_scopes.setdefault((client_id, email), [])
        remembered.extend(s for s in scopes if s not in remembered)
        return grant

    def _issue_access_token(self, grant: Grant, scopes: tuple[str, ...]) -> AccessToken:
        access = AccessToken(
            token=random_token("ya29.", 160),
            grant_id=grant.id,
            email=grant.email,
            client_id=grant.client_id,
            scopes=frozenset(scopes),
            expires_at=timeutil.now() + timedelta(seconds=self.knobs.access_token_ttl),
        )
        self.access_tokens[access.token] = access
        return access

    def _issued(
        self, grant: Grant, access: AccessToken, *, include_refresh_token: bool
    ) -> IssuedTokens:
        return IssuedTokens(
            access_token=access.token,
            expires_in=self.knobs.access_token_ttl,
            scope=" ".join(s for s in grant.scopes if s in access.scopes),
            id_token=self._id_token(grant, access.token) if "openid" in access.scopes else None,
            refresh_token=grant.refresh_token if include_refresh_token else None,
        )

    def _id_token(self, grant: Grant, access_token: str) -> str:
        knobs = dict(self.knobs.id_token)
        issued = int(timeutil.now().timestamp())
        digest = hashlib.sha256(access_token.encode("ascii")).digest()
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "azp": grant.client_id,
            "aud": grant.client_id,
            "sub": subject_for(grant.email),
            "email": grant.email,
            "email_verified": True,
            "at_hash": b64url(digest[: len(digest) // 2]),
            "iat": issued,
            "exp": issued + ID_TOKEN_TTL + int(knobs.pop("exp_offset", 0)),
        }
        if grant.nonce:
            claims["nonce"] = grant.nonce
        bad_signature = bool(knobs.pop("bad_signature", False))
        claims.update(knobs)  # aud, iss, email_verified, or any other claim to tamper with
        return self.keys.sign_jwt(claims, corrupt_signature=bad_signature)

    # --- revocation ---------------------------------------------------------------

    def _live_grants(self, client_id: str, email: str) -> list[Grant]:
        return [
            g
            for g in self.grants.values()
            if g.client_id == client_id and g.email == email and not g.revoked
        ]

    def revoke(self, token: str) -> None:
        """Revoke a refresh or access token. As at Google, that withdraws the user's whole
        grant to the client: every refresh and access token of it, older ones included
        (the `revoke_single_grant` knob limits it to the token's own exchange)."""
        with self.lock:
            grant_id = self.refresh_tokens.get(token)
            if grant_id is None and token in self.access_tokens:
                grant_id = self.access_tokens[token].grant_id
            grant = self.grants.get(grant_id) if grant_id else None
            if grant is None or grant.revoked:
                raise OAuthError(400, "invalid_token", "Token expired or revoked")
            doomed = (
                [grant]
                if self.knobs.revoke_single_grant
                else self._live_grants(grant.client_id, grant.email)
            )
            for each in doomed:
                self._withdraw(each)
            if not self.knobs.revoke_single_grant:
                self.granted_scopes.pop((grant.client_id, grant.email), None)

    def expire_refresh_token(self, token: str) -> bool:
        """Make one refresh token stop working, its grant's others untouched (as Google's
        7-day expiry for apps in Testing, or its per-client limit on refresh tokens)."""
        with self.lock:
            grant = self.grants.get(self.refresh_tokens.get(token, ""))
            if grant is None or grant.revoked:
                return False
            self._withdraw(grant)
            return True

    def _withdraw(self, grant: Grant) -> None:
        grant.revoked = True
        if grant.refresh_token:
            self.refresh_tokens.pop(grant.refresh_token, None)
        for key in [k for k, v in self.access_tokens.items() if v.grant_id == grant.id]:
            del self.access_tokens[key]


def _check_pkce(code: AuthCode, verifier: str | None) -> None:
    if not verifier:
        raise OAuthError(400, "invalid_grant", "Missing code verifier.")
    if not _PKCE_VERIFIER_RE.match(verifier):
        raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
    if code.code_challenge_method == "S256":
        expected = b64url(hashlib.sha256(verifier.encode("ascii")).digest())
    else:
        expected = verifier
    if not secrets.compare_digest(expected, code.code_challenge or ""):
        raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
