"""What the OAuth backend stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

DEFAULT_ACCESS_TOKEN_TTL = 3599


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    redirect_uris: list[str]


@dataclass
class Grant:
    """One user's consent to one client: the refresh token and its access tokens."""

    id: str
    client_id: str
    email: str
    scopes: tuple[str, ...]
    refresh_token: str | None
    nonce: str | None = None
    revoked: bool = False


@dataclass
class AccessToken:
    token: str
    grant_id: str
    email: str
    client_id: str
    scopes: frozenset[str]
    expires_at: datetime


@dataclass
class AuthCode:
    code: str
    client_id: str
    email: str
    scopes: tuple[str, ...]
    redirect_uri: str
    access_type: str
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    expires_at: datetime
    used: bool = False
    # Google showed its consent screen for this code (prompt=consent, or the user's
    # first consent to the client): only then does the exchange carry a refresh token.
    consent_shown: bool = True


@dataclass
class OAuthKnobs:
    """Test knobs for the tokens issued next (see control endpoint /_sandbox/oauth)."""

    omit_refresh_token: bool = False
    # Lenient knobs, off by default (Google's behaviour): a refresh token on every
    # offline exchange, and revocation of one token's grant only.
    refresh_token_without_consent: bool = False
    revoke_single_grant: bool = False
    access_token_ttl: int = DEFAULT_ACCESS_TOKEN_TTL
    id_token: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConsentRequest:
    """A checked authorization request: what the consent form carries on."""

    client_id: str
    redirect_uri: str
    scopes: list[str]
    email: str  # the login hint, or the default account
    hidden: dict[str, str | None]  # the form's hidden fields


@dataclass(frozen=True)
class TokenRequest:
    """The fields of a token request the grant types read."""

    grant_type: str
    code: str = ""
    redirect_uri: str | None = None
    code_verifier: str | None = None
    refresh_token: str = ""
    scope: str | None = None
    assertion: str = ""  # the JWT-bearer grant's signed JWT
    token_url: str = ""  # this endpoint's own URL, an audience the assertion may name


@dataclass(frozen=True)
class IssuedTokens:
    """What one token response carries."""

    access_token: str
    expires_in: int
    scope: str
    id_token: str | None
    refresh_token: str | None
