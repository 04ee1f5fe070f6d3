"""The connect flow's Firestore documents: OAuth states and the connection record.

``oauthStates/<sha256(state)>`` keeps what must survive between ``/start`` and
``/callback`` (the PKCE verifier, the redirect URI, when it expires); a state is spent
in one transaction, which also erases its verifier. ``settings/googleConnection``
describes the connected account (who, since when, which scopes, which secret
version): never a token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core.logs import get_logger
from shared.stores import db

log = get_logger(__name__)

STATES_COLLECTION = "oauthStates"
SETTINGS_COLLECTION = "settings"
CONNECTION_DOCUMENT = "googleConnection"

# Why a state could not be spent.
UNKNOWN = "unknown_state"
REUSED = "reused_state"
EXPIRED = "expired_state"


@dataclass(frozen=True)
class SpentState:
    code_verifier: str
    redirect_uri: str | None


class StateRefused(Exception):
    """The state cannot be spent; ``reason`` is UNKNOWN, REUSED or EXPIRED."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def state_key(state: str) -> str:
    # Documents are keyed by a hash: reading the collection does not reveal live states.
    return hashlib.sha256(state.encode()).hexdigest()


def _states() -> Any:
    return db.firestore_client().collection(STATES_COLLECTION)


def _connection_document() -> Any:
    return db.firestore_client().collection(SETTINGS_COLLECTION).document(CONNECTION_DOCUMENT)


def create_state(state: str, *, code_verifier: str, redirect_uri: str, lifetime: timedelta) -> None:
    now = datetime.now(UTC)
    with db.firestore_errors("store the OAuth state"):
        _states().document(state_key(state)).create(
            {
                "codeVerifier": code_verifier,
                "redirectUri": redirect_uri,
                "createdAt": now,
                # Firestore's TTL policy deletes expired states, but only within a day
                # or so: spend_state checks expiresAt itself.
                "expiresAt": now + lifetime,
            }
        )


def spend_state(state: str) -> SpentState:
    """Mark the state used, atomically; its verifier and redirect URI, or StateRefused."""
    from google.cloud import firestore

    client = db.firestore_client()
    reference = _states().document(state_key(state))

    @firestore.transactional
    def take(transaction: Any) -> SpentState:
        snapshot = reference.get(transaction=transaction)
        if not snapshot.exists:
            raise StateRefused(UNKNOWN)
        data = snapshot.to_dict() or {}
        if data.get("usedAt") is not None or not data.get("codeVerifier"):
            raise StateRefused(REUSED)
        expires_at = data.get("expiresAt")
        if not isinstance(expires_at, datetime) or expires_at <= datetime.now(UTC):
            raise StateRefused(EXPIRED)
        # The verifier is erased as the state is spent: a used state holds nothing.
        transaction.update(
            reference, {"usedAt": datetime.now(UTC), "codeVerifier": firestore.DELETE_FIELD}
        )
        return SpentState(str(data["codeVerifier"]), data.get("redirectUri"))

    with db.firestore_errors("read the OAuth state"):
        return take(client.transaction())


def record_connection(email: str, scopes: list[str], version: str, calendar_id: str) -> None:
    with db.firestore_errors("record the connection"):
        _connection_document().set(
            {
                "email": email,
                "connectedAt": datetime.now(UTC),
                "scopes": scopes,
                "secretVersion": version,
                "calendarId": calendar_id,
            }
        )


def read_connection() -> dict[str, Any]:
    """The connection record, or {} when there is none or Firestore did not answer."""
    try:
        snapshot = _connection_document().get()
    except Exception as error:
        # The description is nice to have; the token check still runs.
        log.warning(
            "could not read the connection record",
            extra={"reason": "firestore_unavailable", "detail": type(error).__name__},
        )
        return {}
    return (snapshot.to_dict() or {}) if snapshot.exists else {}
