"""OAuth's HTTP side: read the query string or the form, call the backend, render."""

from __future__ import annotations

import base64
import urllib.parse

from werkzeug.wrappers import Response

from sandbox.core.routing import ApiRequest, Reply
from sandbox.oauth import render
from sandbox.oauth.backend import OAuthBackend
from sandbox.oauth.errors import OAuthError
from sandbox.oauth.models import TokenRequest

_CERTS_CACHE = {"Cache-Control": "public, max-age=3600"}


def authorize(backend: OAuthBackend, req: ApiRequest) -> Response:
    request = backend.authorization_request(req.args)
    if req.args.get("prompt") == "none":
        # The sandbox keeps no browser session, so there is never a silent grant.
        return render.redirect(
            request.redirect_uri, {"error": "interaction_required", "state": req.args.get("state")}
        )
    return render.consent_page(request)


def consent(backend: OAuthBackend, req: ApiRequest) -> Response:
    form = req.form
    redirect_uri = form.get("redirect_uri", "")
    client = backend.consent_client(form.get("client_id", ""), redirect_uri)
    if form.get("action") != "allow":
        return render.redirect(redirect_uri, {"error": "access_denied", "state": form.get("state")})
    code = backend.issue_code(
        client.client_id,
        redirect_uri,
        form.get("email", "").strip(),
        form.getlist("scope"),
        access_type=form.get("access_type", "online"),
        code_challenge=form.get("code_challenge") or None,
        code_challenge_method=form.get("code_challenge_method") or None,
        nonce=form.get("nonce") or None,
        include_granted_scopes=form.get("include_granted_scopes") == "true",
        prompt=form.get("prompt") or None,
    )
    return render.redirect(
        redirect_uri,
        {
            "state": form.get("state"),
            "code": code.code,
            "scope": " ".join(code.scopes),
            "authuser": "0",
            "prompt": "consent",
        },
    )


def _client_credentials(req: ApiRequest) -> tuple[str | None, str | None]:
    """client_id and client_secret, from the form or an HTTP Basic header."""
    client_id, client_secret = req.form.get("client_id"), req.form.get("client_secret")
    auth = req.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(auth[6:].strip()).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise OAuthError(401, "invalid_client", "Unauthorized") from exc
        basic_id, _, basic_secret = decoded.partition(":")
        # RFC 6749 2.3.1 form-encodes both parts; plain ids decode to themselves.
        client_id = urllib.parse.unquote_plus(basic_id)
        client_secret = urllib.parse.unquote_plus(basic_secret)
    return client_id, client_secret


def token(backend: OAuthBackend, req: ApiRequest) -> Reply:
    form = req.form
    request = TokenRequest(
        grant_type=form.get("grant_type", ""),
        code=form.get("code", ""),
        redirect_uri=form.get("redirect_uri"),
        code_verifier=form.get("code_verifier"),
        refresh_token=form.get("refresh_token", ""),
        scope=form.get("scope"),
        assertion=form.get("assertion", ""),
        token_url=req.request.base_url,
    )
    client_id, client_secret = _client_credentials(req)
    return Reply(render.token_response(backend.token(request, client_id, client_secret)))


def revoke(backend: OAuthBackend, req: ApiRequest) -> Reply:
    backend.revoke(req.args.get("token") or req.form.get("token", ""))
    return Reply({})


def certs_pem(backend: OAuthBackend, req: ApiRequest) -> Reply:
    keys = backend.keys
    return Reply({keys.kid: keys.certificate_pem}, headers=dict(_CERTS_CACHE))


def certs_jwks(backend: OAuthBackend, req: ApiRequest) -> Reply:
    return Reply({"keys": [backend.keys.jwk()]}, headers=dict(_CERTS_CACHE))
