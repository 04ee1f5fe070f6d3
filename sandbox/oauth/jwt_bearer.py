"""The JWT-bearer grant (RFC 7523) as Google's token endpoint runs it for service
accounts, and the Workspace domain's delegation settings it consults.

A service account asks for an access token with an RS256 assertion it signed (with a
key file's private key, or through IAM Credentials `signJwt`). Google checks, in this
order: the JWT's shape, that `iss` is a service account, the signature against that
account's keys, `aud`, the `iat`/`exp` window, the scope; then, with `sub` (acting as a
user of the domain), that the user exists and that the Workspace admin delegated every
requested scope to the account's client id. Each refusal here is Google's own.

Pure functions and a state class; the OAuth backend holds the state under its lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Response

from sandbox.core.signing import b64url_decode, verify_rs256
from sandbox.oauth.errors import OAuthError

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
MAX_LIFETIME = 3600
CLOCK_SKEW = 300
DEFAULT_DOMAIN_USERS = ("admin@school.test",)

BAD_SIGNATURE = "Invalid JWT Signature."
BAD_TIMES = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
    "timeframe. Check your iat and exp values in the JWT claim."
)
UNKNOWN_SUBJECT = "Invalid email or User ID"
NOT_DELEGATED = (
    "Client is unauthorized to retrieve access tokens using this method, or client not "
    "authorized for any of the scopes requested."
)


class NotDelegated(OAuthError):
    """Google's 401 `unauthorized_client` for a delegation not granted. Unlike a failed
    client authentication it carries no `WWW-Authenticate` challenge: there is no client
    secret to offer, and httplib2 (google-auth's transport under googleapiclient) cannot
    parse a bare `Basic` challenge."""

    def __init__(self) -> None:
        super().__init__(401, "unauthorized_client", NOT_DELEGATED)

    def to_response(self) -> Response:
        response = super().to_response()
        response.headers.pop("WWW-Authenticate", None)
        return response


@dataclass(frozen=True)
class Keys:
    """A service account's identity and public keys, as IAM hands them over."""

    email: str
    unique_id: str
    keys: dict[str, Any]


KeyLookup = Callable[[str], "Keys | None"]


@dataclass
class DomainDelegation:
    """The Workspace admin console's "Domain-wide delegation" page, and the domain's users."""

    grants: dict[str, frozenset[str]] = field(default_factory=dict)  # client id -> scopes
    users: set[str] = field(default_factory=lambda: set(DEFAULT_DOMAIN_USERS))

    def grant(self, client_id: str, scopes: list[str]) -> None:
        self.grants[client_id] = frozenset(scopes)

    def withdraw(self, client_id: str) -> bool:
        return self.grants.pop(client_id, None) is not None


@dataclass(frozen=True)
class Accepted:
    """A checked assertion: who the token is for and with which scopes."""

    client_id: str  # the service account's unique id
    email: str  # the subject acted as, or the service account itself
    scopes: tuple[str, ...]


def _invalid(description: str) -> OAuthError:
    return OAuthError(400, "invalid_grant", description)


def _decode(assertion: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    parts = assertion.split(".")
    if len(parts) != 3:
        raise _invalid("Invalid JWT: not three dot-separated parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except ValueError:
        raise _invalid("Invalid JWT: not base64url-encoded JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _invalid("Invalid JWT: not base64url-encoded JSON")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def check_assertion(
    assertion: str,
    *,
    keys_of: KeyLookup,
    audiences: tuple[str, ...],
    delegation: DomainDelegation,
    now: int,
) -> Accepted:
    """The assertion's grant, or the OAuthError Google answers with."""
    if not assertion:
        raise OAuthError(400, "invalid_request", "Missing required parameter: assertion")
    header, claims, signing_input, signature = _decode(assertion)
    issuer = claims.get("iss")
    account = keys_of(issuer) if isinstance(issuer, str) else None
    if account is None:
        raise _invalid("Invalid grant: account not found")
    if header.get("alg") != "RS256":
        raise _invalid(BAD_SIGNATURE)
    kid = header.get("kid")
    candidates = [account.keys[kid]] if kid in account.keys else list(account.keys.values())
    if not any(verify_rs256(key, signing_input, signature) for key in candidates):
        raise _invalid(BAD_SIGNATURE)
    if claims.get("aud") not in audiences:
        raise _invalid(f"Invalid JWT: Failed audience check. The right audience is {audiences[0]}")
    iat, exp = claims.get("iat"), claims.get("exp")
    if (
        not isinstance(iat, int)
        or not isinstance(exp, int)
        or exp <= iat
        or exp - iat > MAX_LIFETIME
        or iat > now + CLOCK_SKEW
        or exp < now - CLOCK_SKEW
    ):
        raise _invalid(BAD_TIMES)
    raw_scope = claims.get("scope")
    scopes = tuple(raw_scope.split()) if isinstance(raw_scope, str) else ()
    if not scopes:
        raise OAuthError(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
    subject = claims.get("sub")
    if subject is None or subject == account.email:
        return Accepted(account.unique_id, account.email, scopes)
    if not isinstance(subject, str) or subject.lower() not in delegation.users:
        raise _invalid(UNKNOWN_SUBJECT)
    granted = delegation.grants.get(account.unique_id, frozenset())
    if not set(scopes) <= granted:
        raise NotDelegated()
    return Accepted(account.unique_id, subject.lower(), scopes)
