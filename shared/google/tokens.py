"""The token store: every Secret Manager call, and the admin's Google credentials.

The admin's refresh token lives in one secret (``REFRESH_TOKEN_SECRET``), one version
per connection. An instance reads it once and keeps the credentials (and so the
access token, until it expires). When Google answers ``invalid_grant`` the secret is
read again once, since the admin may have reconnected since, before giving up.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.core import retry
from shared.core.config import get_config
from shared.core.errors import AdminReconnectRequired, ConfigError, GoogleUnavailable
from shared.core.logs import get_logger
from shared.google import clients

if TYPE_CHECKING:
    from google.oauth2.credentials import Credentials

log = get_logger(__name__)

RECONNECT_HINT = "the admin must reconnect Google by visiting the OAuth start URL"


@dataclass(frozen=True)
class StoredToken:
    refresh_token: str
    version: str  # full resource name of the secret version it came from

    def __repr__(self) -> str:  # never print the token itself
        return f"StoredToken(version={self.version!r})"


@dataclass(frozen=True)
class SecretVersionInfo:
    name: str
    state: str
    create_time: datetime | None


def _retry() -> Any:
    """A short retry: the library default turns a Secret Manager outage into 60 s of waiting."""
    from google.api_core import exceptions

    return retry.api_core_retry(
        retry.SECRET_MANAGER,
        (
            exceptions.ServiceUnavailable,
            exceptions.InternalServerError,
            exceptions.TooManyRequests,
        ),
        10.0,
    )


def _secret_path() -> str:
    config = get_config()
    return f"projects/{config.project}/secrets/{config.refresh_token_secret}"


def _rpc_status(error: Exception) -> str:
    """The google.rpc.Code name Google wrote in the JSON body ("status"), if any.

    Over REST google-api-core picks the exception class by HTTP status alone, so a
    FAILED_PRECONDITION (400) arrives as BadRequest: the name is read from the body."""
    response = getattr(error, "response", None)
    try:
        body = response.json() if response is not None else None
    except (ValueError, AttributeError, TypeError):
        body = None
    status = body.get("error", {}).get("status") if isinstance(body, dict) else None
    return status if isinstance(status, str) else ""


def _translate(error: Exception, what: str) -> Exception:
    """Map a google-api-core error to classcal's; every Secret Manager answer goes here."""
    from google.api_core import exceptions

    status = _rpc_status(error)
    if isinstance(error, exceptions.NotFound) or status == "NOT_FOUND":
        return AdminReconnectRequired(f"no Google connection is stored ({what}): {RECONNECT_HINT}")
    if isinstance(error, exceptions.FailedPrecondition) or status == "FAILED_PRECONDITION":
        # The newest version is disabled or destroyed: only a new connection adds one.
        return AdminReconnectRequired(
            f"the stored Google connection is disabled ({what}): {RECONNECT_HINT}"
        )
    if isinstance(error, exceptions.PermissionDenied) or status == "PERMISSION_DENIED":
        return GoogleUnavailable(f"Secret Manager denied {what}: check the service account's role")
    return GoogleUnavailable(f"Secret Manager failed to {what}: {type(error).__name__}")


def read_refresh_token() -> StoredToken:
    """The newest version of the refresh-token secret."""
    from google.api_core import exceptions

    client = clients.secret_manager_client()
    try:
        response = client.access_secret_version(
            name=f"{_secret_path()}/versions/latest", retry=_retry(), timeout=10.0
        )
    except exceptions.GoogleAPICallError as error:
        raise _translate(error, "read the refresh token") from None
    token = response.payload.data.decode("utf-8").strip()
    if not token:
        raise AdminReconnectRequired(f"the stored refresh token is empty: {RECONNECT_HINT}")
    return StoredToken(refresh_token=token, version=response.name)


def read_service_account_key(secret_id: str) -> dict[str, Any]:
    """The service-account key file in the newest version of ``secret_id``
    (``GOOGLE_SERVICE_ACCOUNT_JSON``). Nothing of its content reaches an error or a log."""
    import json

    from google.api_core import exceptions

    config = get_config()
    name = f"projects/{config.project}/secrets/{secret_id}/versions/latest"
    client = clients.secret_manager_client()
    try:
        response = client.access_secret_version(name=name, retry=_retry(), timeout=10.0)
    except exceptions.NotFound:
        raise ConfigError(
            f"the secret {secret_id} (GOOGLE_SERVICE_ACCOUNT_JSON) does not exist or has no "
            "version: add the service-account key file as its version"
        ) from None
    except exceptions.FailedPrecondition:
        raise ConfigError(
            f"the newest version of {secret_id} (GOOGLE_SERVICE_ACCOUNT_JSON) is disabled"
        ) from None
    except exceptions.GoogleAPICallError as error:
        raise _translate(error, "read the service-account key") from None
    try:
        info = json.loads(response.payload.data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        info = None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ConfigError(
            f"the secret {secret_id} (GOOGLE_SERVICE_ACCOUNT_JSON) does not hold a "
            "service-account key file (JSON with type service_account)"
        )
    return info


def _ensure_secret(client: Any) -> None:
    from google.api_core import exceptions

    config = get_config()
    # Over REST a 409 arrives as Conflict (AlreadyExists is its gRPC-mapped subclass).
    with contextlib.suppress(exceptions.Conflict):
        client.create_secret(
            parent=f"projects/{config.project}",
            secret_id=config.refresh_token_secret,
            secret={"replication": {"automatic": {}}},
            retry=_retry(),
            timeout=10.0,
        )


def list_versions() -> list[SecretVersionInfo]:
    """Every version of the refresh-token secret, newest first."""
    from google.api_core import exceptions

    client = clients.secret_manager_client()
    try:
        versions = [
            SecretVersionInfo(
                name=v.name,
                state=v.state.name,
                create_time=v.create_time if v.create_time else None,
            )
            for v in client.list_secret_versions(
                parent=_secret_path(), retry=_retry(), timeout=10.0
            )
        ]
    except exceptions.NotFound:
        return []
    except exceptions.GoogleAPICallError as error:
        raise _translate(error, "list the refresh token versions") from None
    return sorted(versions, key=lambda v: int(v.name.rsplit("/", 1)[1]), reverse=True)


def store_refresh_token(refresh_token: str) -> str:
    """Add the token as the newest version, then disable every older enabled version.

    Returns the new version's resource name. Older versions are disabled rather than
    destroyed so an operator can still roll back by enabling one.
    """
    from google.api_core import exceptions

    client = clients.secret_manager_client()
    try:
        _ensure_secret(client)
        added = client.add_secret_version(
            parent=_secret_path(),
            payload={"data": refresh_token.encode("utf-8")},
            retry=_retry(),
            timeout=10.0,
        )
        for version in list_versions():
            if version.name != added.name and version.state == "ENABLED":
                client.disable_secret_version(name=version.name, retry=_retry(), timeout=10.0)
    except exceptions.GoogleAPICallError as error:
        raise _translate(error, "store the refresh token") from None
    _admin.forget()
    log.info("stored a new refresh token version", extra={"secret_version": added.name})
    return added.name


class _AdminCredentials:
    """The admin's credentials, built once per instance and shared by its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._credentials: Credentials | None = None
        self._version: str | None = None
        # The secret version Google refused: a revoked or expired grant never works again,
        # so until the secret holds another version no delivery asks Google to refresh it.
        self._refused_version: str | None = None

    def get(self) -> Credentials:
        with self._lock:
            if self._credentials is None:
                self._load()
                if self._version == self._refused_version:
                    self._credentials = None
                    raise AdminReconnectRequired(
                        "the stored refresh token is the one Google refused (invalid_grant): "
                        + RECONNECT_HINT
                    )
            assert self._credentials is not None
            return self._credentials

    def reload_after_invalid_grant(self, failed: Credentials) -> Credentials:
        """Read the secret again; return credentials only if it now holds another token."""
        with self._lock:
            if self._credentials is not None and self._credentials is not failed:
                return self._credentials  # another thread already reloaded
            # Forget the refused token first: if reading the secret fails now, no later
            # call may pick the refused credentials up from the cache again.
            previous = self._version
            self._credentials = None
            self._refused_version = previous
            self._load()
            if self._version == previous:
                self._credentials = None  # the next delivery reads the secret afresh
                raise AdminReconnectRequired(
                    f"Google refused the stored refresh token (invalid_grant): {RECONNECT_HINT}"
                )
            log.info(
                "picked up a new refresh token version", extra={"secret_version": self._version}
            )
            assert self._credentials is not None
            return self._credentials

    def forget(self) -> None:
        with self._lock:
            self._credentials = None
            self._version = None
            self._refused_version = None

    def _load(self) -> None:
        stored = read_refresh_token()
        self._credentials = credentials_for(stored.refresh_token)
        self._version = stored.version


def _single_refresh_class() -> type:
    """google-auth Credentials whose refresh runs once however many threads ask.

    The credentials are shared by every thread of an instance, and google-auth refreshes
    without a lock: eight deliveries arriving at once on a new instance would each ask
    Google for an access token. Here the first refreshes, the others wait for it and use
    its token; a thread whose token Google rejected (401) still gets a new one.
    """
    global _SingleRefresh
    if _SingleRefresh is None:
        from google.oauth2.credentials import Credentials

        class SingleRefreshCredentials(Credentials):  # type: ignore[misc]
            _refresh_lock = threading.Lock()

            def refresh(self, request: Any) -> None:
                seen = self.token
                with self._refresh_lock:
                    if self.token != seen and self.valid:
                        return  # another thread refreshed while this one waited
                    super().refresh(request)

        _SingleRefresh = SingleRefreshCredentials
    return _SingleRefresh


_SingleRefresh: type | None = None


def credentials_for(refresh_token: str | None, access_token: str | None = None) -> Credentials:
    """The admin's credentials for a refresh token: the one place they are built, so the
    functions and the connection check use the same client, token URI and scope."""
    config = get_config()
    return _single_refresh_class()(
        token=access_token,
        refresh_token=refresh_token,
        client_id=config.require("AUTH_GOOGLE_ID"),
        client_secret=config.require("AUTH_GOOGLE_SECRET"),
        token_uri=clients.endpoints(config).token_uri,
        scopes=[clients.CALENDAR_SCOPE],
    )


_admin = _AdminCredentials()


def admin_credentials() -> Credentials:
    return _admin.get()


def reload_admin_credentials(failed: Credentials) -> Credentials:
    return _admin.reload_after_invalid_grant(failed)


def forget_admin_credentials() -> None:
    _admin.forget()


# Token-endpoint errors that only the admin can fix by connecting again: the grant is
# revoked or expired, no longer covers the scope classcal asks for, or was made for
# another OAuth client.
_RECONNECT_ERRORS = frozenset({"invalid_grant", "invalid_scope", "unauthorized_client"})


def _token_error(error: Exception) -> str | None:
    details = error.args[1] if len(error.args) > 1 else None
    if isinstance(details, dict):
        value = details.get("error")
        return value if isinstance(value, str) else None
    return None


def is_invalid_grant(error: Exception) -> bool:
    """Whether a google-auth RefreshError means the stored grant can no longer work."""
    name = _token_error(error)
    if name is not None:
        return name in _RECONNECT_ERRORS
    return any(name in str(error) for name in _RECONNECT_ERRORS)


def is_client_refused(error: Exception) -> bool:
    """Whether Google refused the OAuth client itself (invalid_client: wrong id or secret)."""
    return _token_error(error) == "invalid_client"


__all__ = [
    "StoredToken",
    "admin_credentials",
    "credentials_for",
    "forget_admin_credentials",
    "is_invalid_grant",
    "list_versions",
    "read_refresh_token",
    "reload_admin_credentials",
    "store_refresh_token",
]


REFRESHES = "refreshes"
REFUSED = "refused"  # Google no longer accepts the token (invalid_grant)
UNCHECKED = "unchecked"  # Google's token endpoint did not answer


def check_refresh(refresh_token: str) -> str:
    """Whether a refresh token still refreshes: REFRESHES, REFUSED or UNCHECKED."""
    from google.auth import exceptions as auth_exceptions

    try:
        credentials_for(refresh_token).refresh(clients.http_request())
    except auth_exceptions.RefreshError as error:
        return REFUSED if is_invalid_grant(error) else UNCHECKED
    except auth_exceptions.TransportError:
        return UNCHECKED
    return REFRESHES
