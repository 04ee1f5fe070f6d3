"""OAuth's routes tables: the consent screen (HTML errors) and the token endpoints
(JSON errors) are two `Api`s over one backend."""

from __future__ import annotations

from sandbox.core.routing import Api, RouteRow, bind
from sandbox.oauth import handlers
from sandbox.oauth.backend import OAuthBackend
from sandbox.oauth.errors import consent_fault_error, fault_error

CONSENT_TABLE: tuple[RouteRow, ...] = (
    ("GET", "/o/oauth2/v2/auth", "oauth.authorize", handlers.authorize),
    ("GET", "/o/oauth2/auth", "oauth.authorize", handlers.authorize),
    ("POST", "/o/oauth2/v2/auth/consent", "oauth.consent", handlers.consent),
)
TOKEN_TABLE: tuple[RouteRow, ...] = (
    ("POST", "/token", "oauth.token", handlers.token),
    ("POST", "/revoke", "oauth.revoke", handlers.revoke),
    ("POST", "/o/oauth2/revoke", "oauth.revoke", handlers.revoke),
    ("GET", "/oauth2/v1/certs", "oauth.certs", handlers.certs_pem),
    ("GET", "/oauth2/v3/certs", "oauth.certs", handlers.certs_jwks),
)


def apis(backend: OAuthBackend) -> list[Api]:
    return [
        Api("consent", ("/o/oauth2/",), bind(CONSENT_TABLE, backend), consent_fault_error),
        Api("oauth", ("/token", "/revoke", "/oauth2/"), bind(TOKEN_TABLE, backend), fault_error),
    ]
