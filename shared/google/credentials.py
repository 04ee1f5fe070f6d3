"""The credentials every Calendar call is made with, in the mode ``GOOGLE_AUTH_MODE`` names.

``oauth`` (the default): the admin's refresh token, kept by ``shared.google.tokens``.

``service_account``: a service account acting as ``ADMIN_EMAIL`` through the Workspace
domain's delegation, with no refresh token anywhere:

- keyless (``GOOGLE_SERVICE_ACCOUNT_JSON`` unset): the function's own runtime service
  account (``GOOGLE_SERVICE_ACCOUNT_EMAIL``) has Google sign the delegation JWT through
  IAM Credentials ``signJwt``; no private key exists outside Google;
- with a key: the key file is read from the Secret Manager secret that
  ``GOOGLE_SERVICE_ACCOUNT_JSON`` names (never from a plain variable).

Callers never branch on the mode: they take ``admin_credentials()``, hand a failed token
refresh to ``after_refresh_error()`` and a 401/403 from Calendar to ``access_refused()``.
When Google refuses the delegation, the error and one ERROR line say exactly what the
Workspace administrator must grant. No key, assertion or token is ever logged.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from shared.core.config import Config, get_config
from shared.core.errors import (
    AdminReconnectRequired,
    ClasscalError,
    ConfigError,
    DelegationRefused,
    GoogleUnavailable,
)
from shared.core.logs import get_logger
from shared.google import clients, tokens

log = get_logger(__name__)

# The audience Google requires of a delegation assertion, whichever URI receives it.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)
ASSERTION_LIFETIME = 3600
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
ADMIN_CONSOLE_PAGE = (
    "admin.google.com > Security > Access and data control > API controls > "
    "Manage Domain Wide Delegation"
)
# Token-endpoint errors that mean the domain does not let this account act as the admin.
_DELEGATION_ERRORS = frozenset({"unauthorized_client", "invalid_grant", "invalid_scope"})
_SIGNING_REFUSED = "signjwt_refused"  # our own marker for an IAM signJwt refusal


@dataclass(frozen=True)
class Delegation:
    """What the connect page and the error messages say about service-account mode."""

    keyless: bool
    service_account: str | None  # its email, when known
    client_id: str | None  # its unique id: what the Workspace admin enters
    subject: str  # ADMIN_EMAIL, the account acted as
    scope: str

    @property
    def client_id_text(self) -> str:
        if self.client_id:
            return self.client_id
        who = self.service_account or "the service account"
        return f"(the unique id of {who}: IAM > Service accounts, or Terraform's output)"

    def instruction(self) -> str:
        return (
            f"the Workspace administrator must open {ADMIN_CONSOLE_PAGE} and add client ID "
            f"{self.client_id_text} with the OAuth scope {self.scope}"
        )


def mode(config: Config | None = None) -> str:
    return (config or get_config()).google_auth_mode


def delegation(config: Config | None = None) -> Delegation:
    """The delegation this instance uses (reads nothing from Google)."""
    config = config or get_config()
    client_id = config.google_service_account_client_id
    email = config.google_service_account_email
    if config.google_service_account_json:
        key = _delegated.key_identity()
        if key is not None:
            email, client_id = key
    return Delegation(
        keyless=not config.google_service_account_json,
        service_account=email,
        client_id=client_id,
        subject=config.require("ADMIN_EMAIL"),
        scope=clients.CALENDAR_SCOPE,
    )


# ---------------------------------------------------------------------------------------
# What callers use


def admin_credentials() -> Any:
    """The credentials Calendar calls use, in this deployment's mode."""
    if get_config().service_account_mode:
        return _delegated.get()
    return tokens.admin_credentials()


def forget() -> None:
    """Forget every cached credential (tests; a rotated key)."""
    tokens.forget_admin_credentials()
    _delegated.forget()


def after_refresh_error(error: Exception, failed: Any, *, last_try: bool) -> Any:
    """Credentials for a second try after google-auth's RefreshError, or the error to raise.

    oauth: ``invalid_grant`` is worth one re-read of the refresh-token secret (the admin
    may have reconnected); after that the admin must reconnect. service_account: a
    refusal of the delegation is not fixed by trying again now; it waits for the
    Workspace administrator.
    """
    details = _details(error)
    if not get_config().service_account_mode:
        if not tokens.is_invalid_grant(error):
            raise GoogleUnavailable("token refresh failed") from None
        if last_try:
            raise AdminReconnectRequired(
                f"Google refused the refresh token (invalid_grant): {tokens.RECONNECT_HINT}"
            ) from None
        return tokens.reload_admin_credentials(failed)
    code = details.get("error")
    if code == _SIGNING_REFUSED:
        raise _signing_refused(details) from None
    if code in _DELEGATION_ERRORS:
        raise _delegation_refused(str(code), str(details.get("error_description") or "")) from None
    raise GoogleUnavailable("the service account's token request failed") from None


def access_refused(label: str, *, lacks_scope: bool) -> ClasscalError:
    """The error for Calendar answering 401, or 403 for a scope the token lacks."""
    if not get_config().service_account_mode:
        if lacks_scope:
            return AdminReconnectRequired(
                f"{label}: the stored grant lacks calendar access; {tokens.RECONNECT_HINT}"
            )
        return AdminReconnectRequired(f"{label}: {tokens.RECONNECT_HINT}")
    return _delegation_refused("calendar_" + ("scope" if lacks_scope else "401"), label)


def _details(error: Exception) -> dict[str, Any]:
    details = error.args[1] if len(error.args) > 1 else None
    return details if isinstance(details, dict) else {}


def _delegation_refused(code: str, description: str) -> DelegationRefused:
    config = get_config()
    about = delegation(config)
    if code == "invalid_grant" and "email" in description.lower():
        why = (
            f"Google does not know {about.subject} (ADMIN_EMAIL) as a user of the Workspace "
            "domain: set ADMIN_EMAIL to the calendar owner's account in the school's domain; "
            "and "
        )
    else:
        why = ""
    message = f"Google refused domain-wide delegation ({code}): {why}{about.instruction()}"
    # Google's description is a fixed sentence (never a token): safe to log.
    log.error(
        message,
        extra={
            "reason": "delegation_refused",
            "google_error": code,
            "google_error_description": description[:200] or None,
            "service_account": about.service_account,
            "client_id": about.client_id,
            "scope": about.scope,
            "subject": about.subject,
        },
    )
    refused = DelegationRefused(message)
    _delegated.after_refusal()
    return refused


def _signing_refused(details: dict[str, Any]) -> DelegationRefused:
    about = delegation()
    who = about.service_account or "the runtime service account"
    message = (
        f"IAM Credentials refused to sign as {who} (HTTP {details.get('status')}): grant "
        f"{who} roles/iam.serviceAccountTokenCreator on itself (Terraform does this in "
        "service_account mode) and enable the IAM Credentials API"
    )
    log.error(message, extra={"reason": "signjwt_refused", "service_account": who})
    return DelegationRefused(message, code="signjwt_refused")


# ---------------------------------------------------------------------------------------
# The delegated credentials


def _delegated_class() -> tuple[type, type]:
    """google-auth's service-account Credentials whose refresh runs once however many
    threads ask, and which (keyless) signs its assertion through IAM Credentials signJwt."""
    global _Delegated
    if _Delegated is None:
        from google.auth import crypt
        from google.auth import exceptions as auth_exceptions
        from google.oauth2 import service_account

        class SignJwtSigner(crypt.Signer):  # type: ignore[misc]
            """Stands for a key held by Google: it signs whole JWTs (signJwt), never bytes."""

            def __init__(self, email: str, source: Any) -> None:
                self.email = email
                self.source = source

            @property
            def key_id(self) -> str | None:
                return None

            def sign(self, message: bytes | str) -> bytes:
                raise NotImplementedError("a keyless signer signs whole JWTs through signJwt")

            def sign_jwt(self, claims: dict[str, Any]) -> str:
                import google.auth.transport.requests
                import requests

                config = get_config()
                url = (
                    f"{clients.endpoints(config).iam_credentials_api}/v1/projects/-/"
                    f"serviceAccounts/{self.email}:signJwt"
                )
                session = google.auth.transport.requests.AuthorizedSession(self.source)
                try:
                    response = session.post(
                        url,
                        json={"payload": json.dumps(claims)},
                        timeout=config.google_http_timeout_seconds,
                    )
                except requests.RequestException as error:
                    raise auth_exceptions.TransportError(type(error).__name__) from None
                finally:
                    session.close()
                if response.status_code in (401, 403, 404):
                    raise auth_exceptions.RefreshError(
                        "IAM Credentials refused signJwt",
                        {"error": _SIGNING_REFUSED, "status": response.status_code},
                    )
                if response.status_code != 200:
                    raise auth_exceptions.RefreshError(
                        f"IAM Credentials signJwt answered HTTP {response.status_code}",
                        {"error": "signjwt_unavailable", "status": response.status_code},
                        retryable=True,
                    )
                return str(response.json()["signedJwt"])

        class DelegatedCredentials(service_account.Credentials):  # type: ignore[misc]
            _refresh_lock = threading.Lock()

            def _make_authorization_grant_assertion(self) -> Any:
                if isinstance(self._signer, SignJwtSigner):
                    # The claims google-auth signs with a key, signed by Google instead.
                    now = int(time.time())
                    claims = {
                        "iss": self._service_account_email,
                        "aud": GOOGLE_TOKEN_AUDIENCE,
                        "scope": " ".join(self._scopes or ()),
                        "sub": self._subject,
                        "iat": now,
                        "exp": now + ASSERTION_LIFETIME,
                    }
                    return self._signer.sign_jwt(claims)
                return super()._make_authorization_grant_assertion()

            def refresh(self, request: Any) -> None:
                seen = self.token
                with self._refresh_lock:
                    if self.token != seen and self.valid:
                        return  # another thread refreshed while this one waited
                    super().refresh(request)

        _Delegated = (DelegatedCredentials, SignJwtSigner)
    return _Delegated  # type: ignore[no-any-return]


_Delegated: Any = None


class _DelegatedCredentials:
    """The service account's credentials, built once per instance and shared by its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._credentials: Any = None
        self._key_identity: tuple[str, str] | None = None

    def get(self) -> Any:
        with self._lock:
            if self._credentials is None:
                self._credentials = self._build(get_config())
            return self._credentials

    def key_identity(self) -> tuple[str, str] | None:
        """(email, client id) from the key file, once it was read."""
        with self._lock:
            return self._key_identity

    def after_refusal(self) -> None:
        """With a key file, read the secret again next time (the key may be replaced)."""
        if get_config().google_service_account_json:
            with self._lock:
                self._credentials = None

    def forget(self) -> None:
        with self._lock:
            self._credentials = None
            self._key_identity = None

    def _build(self, config: Config) -> Any:
        credentials_class, signer_class = _delegated_class()
        subject = config.require("ADMIN_EMAIL")
        token_uri = clients.endpoints(config).token_uri
        if config.google_service_account_json:
            info = tokens.read_service_account_key(config.google_service_account_json)
            try:
                # The key file names Google's token URI; the sandbox may stand in for it.
                built = credentials_class.from_service_account_info(
                    {**info, "token_uri": token_uri},
                    scopes=[clients.CALENDAR_SCOPE],
                    subject=subject,
                )
            except (ValueError, KeyError, TypeError):
                # Never the error's text: it may quote the key.
                raise ConfigError(
                    f"the secret {config.google_service_account_json} "
                    "(GOOGLE_SERVICE_ACCOUNT_JSON) does not hold a service-account key file"
                ) from None
            self._key_identity = (str(info.get("client_email")), str(info.get("client_id")))
            log.info(
                "calendar calls act as the admin through a service-account key",
                extra={"service_account": info.get("client_email"), "subject": subject},
            )
            return built
        email = config.require("GOOGLE_SERVICE_ACCOUNT_EMAIL")
        signer = signer_class(email, _source_credentials(config))
        log.info(
            "calendar calls act as the admin through keyless delegation (IAM signJwt)",
            extra={"service_account": email, "subject": subject},
        )
        return credentials_class(
            signer, email, token_uri, scopes=[clients.CALENDAR_SCOPE], subject=subject
        )


def _source_credentials(config: Config) -> Any:
    """Who calls signJwt: the runtime's own credentials (anonymous against the sandbox)."""
    if config.google_sandbox_url:
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    import google.auth

    source, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    return source


_delegated = _DelegatedCredentials()

__all__ = [
    "Delegation",
    "access_refused",
    "admin_credentials",
    "after_refresh_error",
    "delegation",
    "forget",
    "mode",
]


WORKS = "works"
REFUSED = "refused"
UNCHECKED = "unchecked"


def check_delegation() -> tuple[str, str | None]:
    """Whether Google gives the service account a token as ADMIN_EMAIL just now:
    (WORKS | REFUSED | UNCHECKED, what to do or None). Service-account mode only."""
    from google.auth import exceptions as auth_exceptions

    try:
        credentials = _delegated.get()
        credentials.refresh(clients.http_request())
    except auth_exceptions.RefreshError as error:
        try:
            after_refresh_error(error, None, last_try=True)
        except DelegationRefused as refused:
            return REFUSED, refused.message
        except ClasscalError:
            pass
        return UNCHECKED, "Google's token endpoint did not answer; the page checks again."
    except auth_exceptions.TransportError:
        return UNCHECKED, "Google's token endpoint did not answer; the page checks again."
    except ConfigError as error:
        return REFUSED, error.message
    except ClasscalError:
        return UNCHECKED, "Secret Manager did not answer, so the key could not be read."
    return WORKS, None
