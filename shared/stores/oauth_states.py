"""The connect flow's and the admin console's Firestore documents.

- ``oauthStates/<sha256(state)>``: a connect flow's state, written once when its
  callback spends it (the state itself and its PKCE verifier travel in a signed cookie,
  so ``/start`` writes nothing). A second callback with the same state finds the
  document and is refused. ``expiresAt`` lets Firestore's TTL policy delete it.
- ``settings/googleConnection``: the connected account (who, since when, which scopes,
  which secret version) and the last verdict on the stored permission
  (``tokenWorks``, ``tokenCheckedAt``): never a token.
- ``settings/adminSessions``: ``notBefore``, the time of the last "Sign out": session
  cookies issued before it are no longer accepted.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
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


def spend_state(state: str, expires_at: datetime) -> None:
    """Record the state as used, once; StateRefused(REUSED) when it already was."""
    from google.api_core import exceptions

    now = datetime.now(UTC)
    try:
        with db.firestore_errors("record the OAuth state"):
            _states().document(state_key(state)).create(
                {"usedAt": now, "createdAt": now, "expiresAt": expires_at}
            )
    except exceptions.Conflict:
        # Over gRPC a second create is AlreadyExists, Conflict's subclass.
        raise StateRefused(REUSED) from None


def record_connection(email: str, scopes: list[str], version: str, calendar_id: str) -> None:
    with db.firestore_errors("record the connection"):
        _connection_document().set(
            {
                "email": email,
                "connectedAt": datetime.now(UTC),
                "scopes": scopes,
                "secretVersion": version,
                "calendarId": calendar_id,
                "tokenWorks": True,
                "tokenCheckedAt": datetime.now(UTC),
            }
        )


def note_token_refused() -> None:
    """Best effort, from code that met a refused permission: never raises."""
    try:
        record_token_check(False)
    except Exception as error:
        log.warning(
            "could not record the refused permission",
            extra={"reason": "firestore_unavailable", "detail": type(error).__name__},
        )


def record_token_check(works: bool) -> None:
    """Keep the last verdict on the stored permission (what /healthz answers from)."""
    with db.firestore_errors("record the token check"):
        _connection_document().set(
            {"tokenWorks": works, "tokenCheckedAt": datetime.now(UTC)}, merge=True
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


SESSIONS_DOCUMENT = "adminSessions"


def sessions_not_before() -> datetime | None:
    """When the admin last signed out: sessions issued before then are refused."""
    with db.firestore_errors("read the admin sessions"):
        snapshot = (
            db.firestore_client()
            .collection(SETTINGS_COLLECTION)
            .document(SESSIONS_DOCUMENT)
            .get(retry=db.firestore_read_retry(5.0), timeout=5.0)
        )
    value = (snapshot.to_dict() or {}).get("notBefore") if snapshot.exists else None
    return value if isinstance(value, datetime) else None


def end_sessions(at: datetime) -> None:
    with db.firestore_errors("end the admin sessions"):
        db.firestore_client().collection(SETTINGS_COLLECTION).document(SESSIONS_DOCUMENT).set(
            {"notBefore": at}, merge=True
        )
