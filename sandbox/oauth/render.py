"""OAuth's answers: the consent page, redirects back to the client, token responses."""

from __future__ import annotations

import html
import urllib.parse
from typing import Any

from werkzeug.wrappers import Response

from sandbox.oauth.backend import USERINFO_EMAIL, USERINFO_PROFILE
from sandbox.oauth.models import ConsentRequest, IssuedTokens

# Identity scopes the consent screen does not let the user untick.
FIXED_SCOPES = frozenset({"openid", USERINFO_EMAIL, USERINFO_PROFILE})


def redirect(redirect_uri: str, params: dict[str, str | None]) -> Response:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if "?" in redirect_uri else "?"
    return Response(status=302, headers={"Location": f"{redirect_uri}{separator}{query}"})


def token_response(issued: IssuedTokens) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": issued.access_token,
        "expires_in": issued.expires_in,
        "scope": issued.scope,
        "token_type": "Bearer",
    }
    if issued.id_token is not None:
        body["id_token"] = issued.id_token
    if issued.refresh_token is not None:
        body["refresh_token"] = issued.refresh_token
    return body


def consent_page(request: ConsentRequest) -> Response:
    e = html.escape
    hidden_inputs = "\n".join(
        f'    <input type="hidden" name="{e(name)}" value="{e(value)}">'
        for name, value in request.hidden.items()
        if value is not None
    )
    scope_items = []
    for index, scope in enumerate(request.scopes):
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
    page = f"""<!doctype html>
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
  <h1>{e(request.client_id)} wants access to your Google Account</h1>
  <form method="post" action="/o/oauth2/v2/auth/consent" id="consent">
{hidden_inputs}
    <p><label for="email">Account</label>
       <input type="email" name="email" id="email" value="{e(request.email)}" required></p>
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
    return Response(page, content_type="text/html; charset=utf-8")
