"""Factories for every Google client classcal uses, and the endpoints they talk to.

``GOOGLE_SANDBOX_URL`` points every one of them (Calendar, the OAuth authorization,
token and revoke URIs, the id_token certificates, Secret Manager, IAM Credentials) at
the local Google sandbox; when it is unset they talk to Google with no other change.
Firestore and Pub/Sub follow their own emulator variables (``FIRESTORE_EMULATOR_HOST``, ...).

Heavy client modules are imported inside the factories: a function pays for a client
only when its first request needs it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.core.config import Config, get_config

if TYPE_CHECKING:
    import google.auth.credentials
    from google.cloud import firestore, secretmanager

# The least scopes classcal's calls need: events (insert, get, list, patch, delete,
# watch) on the school calendar, and the admin's verified email at connection time.
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events"
OAUTH_SCOPES = ("openid", "https://www.googleapis.com/auth/userinfo.email", CALENDAR_SCOPE)
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


@dataclass(frozen=True)
class Endpoints:
    calendar_api: str | None  # None: the library's own default
    secret_manager_api: str | None
    auth_uri: str
    token_uri: str
    revoke_uri: str
    certs_url: str
    iam_credentials_api: str  # IAM Credentials (signJwt), for keyless delegation


def endpoints(config: Config | None = None) -> Endpoints:
    config = config or get_config()
    sandbox = config.google_sandbox_url
    if sandbox:
        return Endpoints(
            calendar_api=f"{sandbox}/calendar/v3/",
            secret_manager_api=sandbox,
            auth_uri=f"{sandbox}/o/oauth2/v2/auth",
            token_uri=f"{sandbox}/token",
            revoke_uri=f"{sandbox}/revoke",
            certs_url=f"{sandbox}/oauth2/v1/certs",
            iam_credentials_api=sandbox,
        )
    return Endpoints(
        calendar_api=None,
        secret_manager_api=None,
        auth_uri="https://accounts.google.com/o/oauth2/v2/auth",
        token_uri="https://oauth2.googleapis.com/token",  # noqa: S106 (a URL)
        revoke_uri="https://oauth2.googleapis.com/revoke",
        certs_url="https://www.googleapis.com/oauth2/v1/certs",
        iam_credentials_api="https://iamcredentials.googleapis.com",
    )


_lock = threading.Lock()
_firestore: firestore.Client | None = None
_secrets: secretmanager.SecretManagerServiceClient | None = None


def firestore_client() -> firestore.Client:
    """One Firestore client per instance (it is thread-safe)."""
    global _firestore
    if _firestore is None:
        with _lock:
            if _firestore is None:
                from google.cloud import firestore

                _firestore = firestore.Client(project=get_config().project)
    return _firestore


def secret_manager_client() -> secretmanager.SecretManagerServiceClient:
    """One Secret Manager client per instance, over REST (lighter than gRPC to import)."""
    global _secrets
    if _secrets is None:
        with _lock:
            if _secrets is None:
                from google.cloud import secretmanager

                api = endpoints().secret_manager_api
                if api:
                    from google.auth.credentials import AnonymousCredentials

                    _secrets = secretmanager.SecretManagerServiceClient(
                        transport="rest",
                        credentials=AnonymousCredentials(),
                        client_options={"api_endpoint": api},
                    )
                else:
                    _secrets = secretmanager.SecretManagerServiceClient(transport="rest")
    return _secrets


def http_request() -> Any:
    """A google-auth transport request (for refreshing tokens and fetching certificates)."""
    import google.auth.transport.requests
    import requests

    session = requests.Session()
    return google.auth.transport.requests.Request(session=session)


def calendar_service(
    credentials: google.auth.credentials.Credentials | None = None,
    *,
    developer_key: str | None = None,
) -> Any:
    """A Calendar v3 service object, its requests sent on a connection of its own.

    httplib2 connections are not thread-safe, and functions-framework serves requests
    on several threads. ``shared.google.calendar`` therefore builds one service without
    credentials, shares it, and executes each request with ``http=`` set to the
    thread's own ``calendar_http`` connection, as googleapiclient's thread-safety guide
    shows. With ``credentials`` the service is ready to use from one thread.
    """
    from googleapiclient.discovery import build

    api = endpoints().calendar_api
    return build(
        "calendar",
        "v3",
        http=calendar_http(credentials),
        developerKey=developer_key,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": api} if api else None,
    )


def calendar_http(credentials: google.auth.credentials.Credentials | None = None) -> Any:
    """A connection for Calendar requests, authorised by ``credentials`` (none: an API
    key is in the request). Not thread-safe: one per thread."""
    import google_auth_httplib2
    import httplib2

    http = httplib2.Http(timeout=get_config().google_http_timeout_seconds)
    if credentials is None:
        return http
    return google_auth_httplib2.AuthorizedHttp(credentials, http=http)


def reset_clients() -> None:
    """Forget cached clients (tests point them at fresh emulators)."""
    global _firestore, _secrets
    with _lock:
        _firestore = None
        _secrets = None
