"""Google OAuth 2.0: the consent screen, the token and revocation endpoints, id_tokens
and the signing certificates."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import urllib.parse
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Response

from sandbox import timeutil
from sandbox.errors import ConsentPageError, OAuthError
from sandbox.routing import Reply, RequestContext, Route, route
from sandbox.signing import b64url
from sandbox.state import AccessToken, AuthCode, Grant, OAuthClient, State, random_token

if TYPE_CHECKING:
    from sandbox.server import Sandbox

ISSUER = "https://accounts.google.com"
USERINFO_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
USERINFO_PROFILE = "https://www.googleapis.com/auth/userinfo.profile"
# Google answers with the long names of these short scopes, which is why
# oauthlib warns "Scope has changed" unless OAUTHLIB_RELAX_TOKEN_SCOPE is set.
SCOPE_ALIASES = {"email": USERINFO_EMAIL, "profile": USERINFO_PROFILE}
# Identity scopes the consent screen does not let the user untick.
FIXED_SCOPES = frozenset({"openid", USERINFO_EMAIL, USERINFO_PROFILE})
DEFAULT_EMAIL = "admin@school.test"
CODE_TTL = timedelta(minutes=10)
ID_TOKEN_TTL = 3600
_PKCE_VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")

REVOKED_DESCRIPTION = "Token has been expired or revoked."


def routes() -> list[Route]:
    return [
        route("GET", "/o/oauth2/v2/auth", "oauth.authorize", "consent", authorize),
        route("GET", "/o/oauth2/auth", "oauth.authorize", "consent", authorize),
        route("POST", "/o/oauth2/v2/auth/consent", "oauth.consent", "consent", consent),
        route("POST", "/token", "oauth.token", "oauth", token),
        route("POST", "/revoke", "oauth.revoke", "oauth", revoke),
        route("POST", "/o/oauth2/revoke", "oauth.revoke", "oauth", revoke),
        route("GET", "/oauth2/v1/certs", "oauth.certs", "oauth", certs_pem),
        route("GET", "/oauth2/v3/certs", "oauth.certs", "oauth", certs_jwks),
    ]


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


# --- consent screen ------------------------------------------------------


def authorize(ctx: RequestContext) -> Response:
    args = ctx.request.args
    state = ctx.sandbox.state
    with state.lock:
        client = _consent_client(state, args.get("client_id", ""), args.get("redirect_uri", ""))
    redirect_uri = args["redirect_uri"]
    if args.get("response_type") != "code":
        raise ConsentPageError(
            400, "unsupported_response_type", f"Invalid response_type: {args.get('response_type')}"
        )
    scopes = normalize_scopes(args.get("scope", ""))
    if not scopes:
        raise ConsentPageError(400, "invalid_request", "Missing required parameter: scope")
    method = args.get("code_challenge_method")
    challenge = args.get("code_challenge")
    if method is not None and method not in ("S256", "plain"):
        raise ConsentPageError(400, "invalid_request", f"Invalid code_challenge_method: {method}")
    if method is not None and not challenge:
        raise ConsentPageError(400, "invalid_request", "Missing code_challenge")
    access_type = args.get("access_type", "online")
    if access_type not in ("online", "offline"):
        raise ConsentPageError(400, "invalid_request", f"Invalid access_type: {access_type}")
    if args.get("prompt") == "none":
        # The sandbox keeps no browser session, so there is never a silent grant.
        return _redirect(
            redirect_uri, {"error": "interaction_required", "state": args.get("state")}
        )
    hidden = {
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "state": args.get("state"),
        "access_type": access_type,
        "code_challenge": challenge,
        "code_challenge_method": method or ("plain" if challenge else None),
        "include_granted_scopes": args.get("include_granted_scopes"),
        "nonce": args.get("nonce"),
        "prompt": args.get("prompt"),
    }
    email = args.get("login_hint") or DEFAULT_EMAIL
    return Response(
        _consent_page(client, email, scopes, hidden), content_type="text/html; charset=utf-8"
    )


def _consent_client(state: State, client_id: str, redirect_uri: str) -> OAuthClient:
    client = state.clients.get(client_id)
    if client is None:
        raise ConsentPageError(
            400, "invalid_client", f"The OAuth client was not found: {client_id}"
        )
    if redirect_uri not in client.redirect_uris:
        raise ConsentPageError(
            400,
            "redirect_uri_mismatch",
            f"You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 "
            f"policy. redirect_uri={redirect_uri}",
        )
    return client


def _consent_page(
    client: OAuthClient, email: str, scopes: list[str], hidden: dict[str, str | None]
) -> str:
    e = html.escape
    hidden_inputs = "\n".join(
        f'    <input type="hidden" name="{e(name)}" value="{e(value)}">'
        for name, value in hidden.items()
        if value is not None
    )
    scope_items = []
    for index, scope in enumerate(scopes):
        if scope in FIXED_SCOPES:
            scope_items.append(
                f'    <li><input type="hidden" name="scope" value="{e(scope)}">'
                f'<span class="fixed">{e(scope)}</span></li>'
            )
        else:
            scope_items.append(
                f'    <li><input type="checkbox" name="scope" id="scope-{index}" '
                f'value="{e(scope)}" checked> <label for="scope-{index}">{e(scope)}</label></li>'
            )
    scope_list = "\n".join(scope_items)
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Sign in - Google Accounts (sandbox)</title>
  <style>
    body {{ font-family: sans-serif; max-width: 40em; margin: 2em auto; }}
    .fixed {{ color: #555; }}
    button {{ font-size: 1em; margin-right: 1em; padding: .4em 1.2em; }}
  </style>
</head>
<body>
  <h1>{e(client.client_id)} wants access to your Google Account</h1>
  <form method="post" action="/o/oauth2/v2/auth/consent" id="consent">
{hidden_inputs}
    <p><label for="email">Account</label>
       <input type="email" name="email" id="email" value="{e(email)}" required></p>
    <p>This will allow the app to:</p>
    <ul>
{scope_list}
    </ul>
    <button type="submit" name="action" value="deny" id="deny">Deny</button>
    <button type="submit" name="action" value="allow" id="allow">Allow</button>
  </form>
</body>
</html>
"""


def consent(ctx: RequestContext) -> Response:
    form = ctx.request.form
    state = ctx.sandbox.state
    redirect_uri = form.get("redirect_uri", "")
    with state.lock:
        client = _consent_client(state, form.get("client_id", ""), redirect_uri)
    if form.get("action") != "allow":
        return _redirect(redirect_uri, {"error": "access_denied", "state": form.get("state")})
    email = form.get("email", "").strip()
    if not _EMAIL_RE.match(email):
        raise ConsentPageError(400, "invalid_request", f"Not an email address: {email}")
    scopes = normalize_scopes(form.getlist("scope"))
    with state.lock:
        if form.get("include_granted_scopes") == "true":
            for scope in state.granted_scopes.get((client.client_id, email), []):
                if scope not in scopes:
                    scopes.append(scope)
        code = AuthCode(
            code=random_token("4/0", 70),
            client_id=client.client_id,
            email=email,
            scopes=tuple(scopes),
            redirect_uri=redirect_uri,
            access_type=form.get("access_type", "online"),
            code_challenge=form.get("code_challenge") or None,
            code_challenge_method=form.get("code_challenge_method") or None,
            nonce=form.get("nonce") or None,
            expires_at=timeutil.now() + CODE_TTL,
        )
        state.codes[code.code] = code
    return _redirect(
        redirect_uri,
        {
            "state": form.get("state"),
            "code": code.code,
            "scope": " ".join(scopes),
            "authuser": "0",
            "prompt": "consent",
        },
    )


def _redirect(redirect_uri: str, params: dict[str, str | None]) -> Response:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if "?" in redirect_uri else "?"
    return Response(status=302, headers={"Location": f"{redirect_uri}{separator}{query}"})


# --- token endpoint ------------------------------------------------------


def token(ctx: RequestContext) -> Reply:
    form = ctx.request.form
    sandbox = ctx.sandbox
    grant_type = form.get("grant_type", "")
    if grant_type in ("authorization_code", "refresh_token"):
        sandbox.count(f"oauth.token.{grant_type}")
    with sandbox.state.lock:
        client = _authenticate_client(ctx)
        if grant_type == "authorization_code":
            return Reply(_code_grant(sandbox, client, form))
        if grant_type == "refresh_token":
            return Reply(_refresh_grant(sandbox, client, form))
    raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")


def _authenticate_client(ctx: RequestContext) -> OAuthClient:
    form = ctx.request.form
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    auth = ctx.request.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(auth[6:].strip()).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise OAuthError(401, "invalid_client", "Unauthorized") from exc
        basic_id, _, basic_secret = decoded.partition(":")
        # RFC 6749 2.3.1 form-encodes both parts; plain ids decode to themselves.
        client_id = urllib.parse.unquote_plus(basic_id)
        client_secret = urllib.parse.unquote_plus(basic_secret)
    client = ctx.sandbox.state.clients.get(client_id or "")
    if client is None:
        raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
    if not secrets.compare_digest(client.client_secret, client_secret or ""):
        raise OAuthError(401, "invalid_client", "Unauthorized")
    return client


def _code_grant(sandbox: Sandbox, client: OAuthClient, form: Any) -> dict[str, Any]:
    state = sandbox.state
    code = state.codes.get(form.get("code", ""))
    if code is None or code.client_id != client.client_id:
        raise OAuthError(400, "invalid_grant", "Malformed auth code.")
    if code.used or timeutil.now() >= code.expires_at:
        raise OAuthError(400, "invalid_grant", "Bad Request")
    if form.get("redirect_uri") != code.redirect_uri:
        raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
    if code.code_challenge is not None:
        _check_pkce(code, form.get("code_verifier"))
    code.used = True
    knobs = state.oauth_knobs
    offline = code.access_type == "offline" and not knobs.omit_refresh_token
    grant = create_grant(state, client.client_id, code.email, code.scopes, offline, code.nonce)
    access = issue_access_token(state, grant, grant.scopes)
    return token_response(sandbox, grant, access, include_refresh_token=offline)


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


def _refresh_grant(sandbox: Sandbox, client: OAuthClient, form: Any) -> dict[str, Any]:
    state = sandbox.state
    grant_id = state.refresh_tokens.get(form.get("refresh_token", ""))
    grant = state.grants.get(grant_id) if grant_id else None
    if grant is None or grant.revoked:
        raise OAuthError(400, "invalid_grant", REVOKED_DESCRIPTION)
    if grant.client_id != client.client_id:
        raise OAuthError(401, "unauthorized_client", "Unauthorized")
    scopes = grant.scopes
    if form.get("scope"):
        requested = normalize_scopes(form["scope"])
        if not set(requested) <= set(grant.scopes):
            raise OAuthError(400, "invalid_scope", "Some requested scopes were invalid.")
        scopes = tuple(requested)
    access = issue_access_token(state, grant, scopes)
    return token_response(sandbox, grant, access, include_refresh_token=False)


def create_grant(
    state: State,
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
    state.grants[grant.id] = grant
    if grant.refresh_token:
        state.refresh_tokens[grant.refresh_token] = grant.id
    remembered = state.granted_scopes.setdefault((client_id, email), [])
    remembered.extend(s for s in scopes if s not in remembered)
    return grant


def issue_access_token(state: State, grant: Grant, scopes: tuple[str, ...]) -> AccessToken:
    access = AccessToken(
        token=random_token("ya29.", 160),
        grant_id=grant.id,
        email=grant.email,
        client_id=grant.client_id,
        scopes=frozenset(scopes),
        expires_at=timeutil.now() + timedelta(seconds=state.oauth_knobs.access_token_ttl),
    )
    state.access_tokens[access.token] = access
    return access


def token_response(
    sandbox: Sandbox, grant: Grant, access: AccessToken, *, include_refresh_token: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": access.token,
        "expires_in": sandbox.state.oauth_knobs.access_token_ttl,
        "scope": " ".join(s for s in grant.scopes if s in access.scopes),
        "token_type": "Bearer",
    }
    if "openid" in access.scopes:
        body["id_token"] = make_id_token(sandbox, grant, access.token)
    if include_refresh_token and grant.refresh_token:
        body["refresh_token"] = grant.refresh_token
    return body


def make_id_token(sandbox: Sandbox, grant: Grant, access_token: str) -> str:
    knobs = dict(sandbox.state.oauth_knobs.id_token)
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
    return sandbox.keys.sign_jwt(claims, corrupt_signature=bad_signature)


# --- revocation and certificates --------------------------------------------


def revoke(ctx: RequestContext) -> Reply:
    value = ctx.request.args.get("token") or ctx.request.form.get("token", "")
    state = ctx.sandbox.state
    with state.lock:
        grant_id = state.refresh_tokens.get(value)
        if grant_id is None and value in state.access_tokens:
            grant_id = state.access_tokens[value].grant_id
        grant = state.grants.get(grant_id) if grant_id else None
        if grant is None or grant.revoked:
            raise OAuthError(400, "invalid_token", "Token expired or revoked")
        revoke_grant(state, grant)
    return Reply({})


def revoke_grant(state: State, grant: Grant) -> None:
    grant.revoked = True
    if grant.refresh_token:
        state.refresh_tokens.pop(grant.refresh_token, None)
    for key in [k for k, v in state.access_tokens.items() if v.grant_id == grant.id]:
        del state.access_tokens[key]


def certs_pem(ctx: RequestContext) -> Reply:
    keys = ctx.sandbox.keys
    return Reply(
        {keys.kid: keys.certificate_pem}, headers={"Cache-Control": "public, max-age=3600"}
    )


def certs_jwks(ctx: RequestContext) -> Reply:
    return Reply(
        {"keys": [ctx.sandbox.keys.jwk()]}, headers={"Cache-Control": "public, max-age=3600"}
    )


def issue_for_control(
    sandbox: Sandbox, email: str, client_id: str, scope: str | list[str]
) -> dict[str, Any]:
    """Tokens as if `email` had consented offline to `client_id` (control endpoint)."""
    state = sandbox.state
    with state.lock:
        grant = create_grant(state, client_id, email, normalize_scopes(scope), offline=True)
        access = issue_access_token(state, grant, grant.scopes)
        return token_response(sandbox, grant, access, include_refresh_token=True)
