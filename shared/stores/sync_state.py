"""The sync state store: every Firestore call about Calendar push channels and syncing.

Two collections:

- ``calendarChannels/{channelId}``: one document per watch channel classcal asked
  Google for, holding a SHA-256 digest of the channel's secret token
  (``tokenDigest``: a notification must echo the token in ``X-Goog-Channel-Token``,
  and reading the collection does not reveal it; channels created by earlier versions
  keep a plain ``token`` until renewal replaces them), the highest
  ``X-Goog-Message-Number`` handled (``lastMessageNumber``) and when
  (``lastNotificationAt``), its ``resourceId``, ``expiration``, ``calendarId``,
  ``address`` and ``state`` (``pending`` while the watch call runs, ``active``,
  ``stopped``, or ``abandoned`` when a watch call never completed).
- ``calendarSync/{calendarId}``: the calendar's sync token, plus a lease and a
  ``dirty`` flag that make syncing exactly-once under concurrent notifications, and
  ``passStartedAt``, which lets notification-driven syncs keep at most one listing per
  calendar per ``SYNC_MIN_INTERVAL_SECONDS``.

The lease protocol: a notification marks the calendar dirty and, in the same
transaction, takes the lease if nobody holds it. Only the lease holder lists changes.
Each pass clears ``dirty`` before listing and, when it stores the new sync token,
checks ``dirty`` again in the same transaction: a notification that arrived meanwhile
makes the holder run another pass instead of releasing. So a change is never lost
(whoever marked it dirty is either the holder or is covered by one more pass), and
never listed by two syncs at once.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from shared.core import ids, retry, signing
from shared.core.errors import StoreUnavailable, TransientError
from shared.stores import db
from shared.stores.leases import LeaseFields

CHANNELS = "calendarChannels"
SYNC = "calendarSync"

PENDING = "pending"
ACTIVE = "active"
STOPPED = "stopped"
ABANDONED = "abandoned"
LIVE_STATES = (PENDING, ACTIVE)
READ_TIMEOUT = 5.0
LEASE_ATTEMPTS = 4


class LeaseLost(TransientError):
    """Another sync took over this calendar's lease (ours expired)."""

    code = "sync_lease_lost"


@dataclass(frozen=True)
class Channel:
    id: str
    token_digest: str
    calendar_id: str
    address: str
    state: str
    resource_id: str | None = None
    expiration: datetime | None = None
    created_at: datetime | None = None
    last_message_number: int | None = None
    last_notification_at: datetime | None = None

    def __repr__(self) -> str:  # the token is a credential: never print it
        return (
            f"Channel(id={self.id!r}, calendar_id={self.calendar_id!r}, state={self.state!r}, "
            f"expiration={self.expiration!r})"
        )


@dataclass(frozen=True)
class Lease:
    calendar_id: str
    owner: str


def _firestore_call(what: str) -> contextlib.AbstractContextManager[None]:
    return db.firestore_errors(what)


def _read_retry() -> Any:
    return db.firestore_read_retry(READ_TIMEOUT)


def _db() -> Any:
    return db.firestore_client()


def _channel_ref(channel_id: str) -> Any:
    return _db().collection(CHANNELS).document(channel_id)


def _sync_ref(calendar_id: str) -> Any:
    # Calendar ids are email-like; quoting keeps any '/' out of the document path.
    return _db().collection(SYNC).document(quote(calendar_id, safe="@."))


def _channel(doc_id: str, data: dict[str, Any]) -> Channel:
    legacy = data.get("token")
    stored_digest = data.get("tokenDigest") or (
        signing.digest(legacy) if isinstance(legacy, str) and legacy else ""
    )
    number = data.get("lastMessageNumber")
    return Channel(
        id=doc_id,
        token_digest=str(stored_digest),
        last_message_number=number if isinstance(number, int) else None,
        last_notification_at=data.get("lastNotificationAt"),
        calendar_id=str(data.get("calendarId", "")),
        address=str(data.get("address", "")),
        state=str(data.get("state", "")),
        resource_id=data.get("resourceId"),
        expiration=data.get("expiration"),
        created_at=data.get("createdAt"),
    )


# --- channels ---


def get_channel(channel_id: str) -> Channel | None:
    # The id comes from a request header: one that cannot be a document id names no
    # channel, rather than a Firestore error (a 500, or a 503 that Google retries).
    if not ids.is_document_id(channel_id):
        return None
    with _firestore_call("read a channel"):
        snapshot = _channel_ref(channel_id).get(retry=_read_retry(), timeout=READ_TIMEOUT)
    if not snapshot.exists:
        return None
    return _channel(snapshot.id, snapshot.to_dict() or {})


def create_pending_channel(channel_id: str, token: str, calendar_id: str, address: str) -> None:
    """Record a channel before asking Google for it: its first notification may come first."""
    from google.cloud import firestore

    with _firestore_call("record a channel"):
        _channel_ref(channel_id).create(
            {
                "id": channel_id,
                "tokenDigest": signing.digest(token),
                "calendarId": calendar_id,
                "address": address,
                "state": PENDING,
                "createdAt": firestore.SERVER_TIMESTAMP,
            }
        )


def activate_channel(channel_id: str, resource_id: str, expiration: datetime) -> None:
    from google.cloud import firestore

    with _firestore_call("activate a channel"):
        _channel_ref(channel_id).update(
            {
                "state": ACTIVE,
                "resourceId": resource_id,
                "expiration": expiration,
                "activatedAt": firestore.SERVER_TIMESTAMP,
            }
        )


def set_channel_state(channel_id: str, state: str, *, reason: str | None = None) -> None:
    from google.cloud import firestore

    fields: dict[str, Any] = {"state": state, f"{state}At": firestore.SERVER_TIMESTAMP}
    if reason:
        fields["stateReason"] = reason
    with _firestore_call("update a channel"):
        _channel_ref(channel_id).update(fields)


def record_message(channel_id: str, number: int | None) -> None:
    """Note a handled notification: its message number (kept at the highest, by a
    server-side maximum, so a burst of notifications does not contend) and time."""
    from google.cloud import firestore

    fields: dict[str, Any] = {"lastNotificationAt": datetime.now(UTC)}
    if number is not None:
        fields["lastMessageNumber"] = firestore.Maximum(number)
    with _firestore_call("record a notification"):
        _channel_ref(channel_id).update(fields)


def live_channels(calendar_id: str) -> list[Channel]:
    """Channels of this calendar that are pending or active, newest expiration last."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        _db()
        .collection(CHANNELS)
        .where(filter=FieldFilter("calendarId", "==", calendar_id))
        .where(filter=FieldFilter("state", "in", list(LIVE_STATES)))
    )
    with _firestore_call("list channels"):
        channels = [_channel(s.id, s.to_dict() or {}) for s in query.stream()]
    far_past = datetime.min.replace(tzinfo=UTC)
    return sorted(channels, key=lambda c: c.expiration or c.created_at or far_past)


def claim_channel_upkeep(calendar_id: str, owner: str, seconds: float) -> bool:
    """Take the per-calendar lock for creating or renewing channels (one maintenance at a time)."""
    return _claim(calendar_id, "channelUpkeep", owner, seconds)


def release_channel_upkeep(calendar_id: str, owner: str) -> None:
    _release(calendar_id, "channelUpkeep", owner)


def _claim(calendar_id: str, name: str, owner: str, seconds: float) -> bool:
    from google.cloud import firestore

    ref = _sync_ref(calendar_id)

    @firestore.transactional
    def claim(transaction: Any) -> bool:
        data = ref.get(transaction=transaction).to_dict() or {}
        now = datetime.now(UTC)
        lease = LeaseFields(f"{name}Lease")
        if lease.held_by_another(data, owner, now):
            return False
        transaction.set(
            ref, {"calendarId": calendar_id, **lease.grant(owner, seconds, now)}, merge=True
        )
        return True

    with _firestore_call(f"claim the {name} lock"):
        return bool(claim(_db().transaction()))


def _release(calendar_id: str, name: str, owner: str) -> None:
    from google.cloud import firestore

    ref = _sync_ref(calendar_id)

    @firestore.transactional
    def release(transaction: Any) -> None:
        data = ref.get(transaction=transaction).to_dict() or {}
        lease = LeaseFields(f"{name}Lease")
        if lease.owned_by(data, owner):
            transaction.update(ref, lease.cleared())

    with _firestore_call(f"release the {name} lock"):
        release(_db().transaction())


# --- sync token, lease and dirty flag ---


@dataclass(frozen=True)
class TooSoon:
    """The lease is free, but the last pass started less than the minimum interval ago."""

    wait_seconds: float


def request_sync(
    calendar_id: str, lease_seconds: float, *, min_interval: float = 0.0, mark: bool = True
) -> Lease | TooSoon | None:
    """Mark the calendar dirty; return a lease if this caller should run the sync.

    ``None`` means another sync holds a live lease: it will see the dirty flag and run
    one more pass, so this caller's change is covered without listing twice.

    The mark is a plain write, not a transaction: a burst of notifications must not
    contend on the document the lease holder needs. It is still safe, because the
    holder reads ``dirty`` inside its transactions, which a write cannot slip between:
    either the holder sees the mark (and runs another pass) or it released the lease
    before the mark, and then the read below finds the lease free and takes it.

    ``min_interval``: a free lease is not taken while the last pass started less than
    this many seconds ago; TooSoon says how long to wait, and the caller asks again with
    ``mark=False``. Then ``None`` also means a pass started after the mark (``dirty``
    is clear): that pass listed this caller's change.
    """
    ref = _sync_ref(calendar_id)
    if mark:
        with _firestore_call("mark the calendar for sync"):
            ref.set(
                {"calendarId": calendar_id, "dirty": True, "dirtyAt": datetime.now(UTC)},
                merge=True,
            )
    for attempt in range(LEASE_ATTEMPTS):
        with _firestore_call("read the sync lease"):
            data = ref.get(retry=_read_retry(), timeout=READ_TIMEOUT).to_dict() or {}
        if _lease_held(data, datetime.now(UTC)) or not data.get("dirty"):
            return None
        try:
            return _take_lease(ref, calendar_id, lease_seconds, min_interval)
        except StoreUnavailable:
            # Contention: most likely another notification is taking the lease right now.
            if attempt == LEASE_ATTEMPTS - 1:
                raise
            retry.sleep(retry.CONTENTION.delay(attempt))
    raise AssertionError("unreachable")


SYNC_LEASE = LeaseFields("lease")


def _lease_held(data: dict[str, Any], now: datetime) -> bool:
    return SYNC_LEASE.holder(data, now) is not None


def _since_last_pass(data: dict[str, Any], now: datetime) -> float | None:
    started = data.get("passStartedAt")
    return (now - started).total_seconds() if isinstance(started, datetime) else None


def _take_lease(
    ref: Any, calendar_id: str, lease_seconds: float, min_interval: float = 0.0
) -> Lease | TooSoon | None:
    from google.cloud import firestore

    owner = secrets.token_hex(8)

    @firestore.transactional
    def take(transaction: Any) -> Lease | TooSoon | None:
        data = ref.get(transaction=transaction).to_dict() or {}
        now = datetime.now(UTC)
        if _lease_held(data, now) or not data.get("dirty"):
            return None
        elapsed = _since_last_pass(data, now)
        if min_interval > 0 and elapsed is not None and 0 <= elapsed < min_interval:
            return TooSoon(min_interval - elapsed)
        transaction.set(
            ref,
            SYNC_LEASE.grant(owner, lease_seconds, now),
            merge=True,
        )
        return Lease(calendar_id=calendar_id, owner=owner)

    with _firestore_call("take the sync lease"):
        return take(_db().transaction())


def start_pass(lease: Lease, lease_seconds: float) -> str | None:
    """Begin one listing pass: clear ``dirty``, extend the lease, return the sync token."""
    from google.cloud import firestore

    ref = _sync_ref(lease.calendar_id)

    @firestore.transactional
    def begin(transaction: Any) -> str | None:
        data = ref.get(transaction=transaction).to_dict() or {}
        if not SYNC_LEASE.owned_by(data, lease.owner):
            raise LeaseLost("another sync took over this calendar")
        now = datetime.now(UTC)
        transaction.update(
            ref,
            {
                "dirty": False,
                "passStartedAt": now,
                **SYNC_LEASE.grant(lease.owner, lease_seconds, now),
            },
        )
        token = data.get("syncToken")
        return str(token) if token else None

    with _firestore_call("start a sync pass"):
        return begin(_db().transaction())


def finish_pass(lease: Lease, sync_token: str | None, *, full: bool, lease_seconds: float) -> bool:
    """Store the new sync token. True: released, done. False: dirty again, run another pass."""
    from google.cloud import firestore

    ref = _sync_ref(lease.calendar_id)

    @firestore.transactional
    def finish(transaction: Any) -> bool:
        data = ref.get(transaction=transaction).to_dict() or {}
        if not SYNC_LEASE.owned_by(data, lease.owner):
            raise LeaseLost("another sync took over this calendar")
        now = datetime.now(UTC)
        fields: dict[str, Any] = {"syncedAt": now}
        if sync_token:
            fields["syncToken"] = sync_token
        if full:
            fields["fullSyncAt"] = now
        again = bool(data.get("dirty"))
        if again:
            fields.update(SYNC_LEASE.grant(lease.owner, lease_seconds, now))
        else:
            fields.update(SYNC_LEASE.cleared())
        transaction.update(ref, fields)
        return not again

    with _firestore_call("finish a sync pass"):
        return finish(_db().transaction())


def abandon_sync(lease: Lease) -> None:
    """Give the lease back after a failure, leaving ``dirty`` set so the next sync redoes it."""
    from google.cloud import firestore

    ref = _sync_ref(lease.calendar_id)

    @firestore.transactional
    def abandon(transaction: Any) -> None:
        data = ref.get(transaction=transaction).to_dict() or {}
        if SYNC_LEASE.owned_by(data, lease.owner):
            transaction.update(ref, {**SYNC_LEASE.cleared(), "dirty": True})

    with _firestore_call("release the sync lease"):
        abandon(_db().transaction())


def sync_status(calendar_id: str) -> dict[str, Any]:
    """The calendar's sync document (token included): for maintenance and tests."""
    with _firestore_call("read the sync state"):
        snapshot = _sync_ref(calendar_id).get(retry=_read_retry(), timeout=READ_TIMEOUT)
        return snapshot.to_dict() or {}


def reconcile_cursor(calendar_id: str) -> Any:
    """Where the last maintenance stopped checking scheduled bookings' events."""
    return sync_status(calendar_id).get("eventCheckCursor")


def set_reconcile_cursor(calendar_id: str, cursor: Any) -> None:
    with _firestore_call("store the event-check cursor"):
        _sync_ref(calendar_id).set(
            {"calendarId": calendar_id, "eventCheckCursor": cursor}, merge=True
        )


def record_mirror_rebuilt(calendar_id: str) -> None:
    """Note when the busy-time mirror was last rebuilt from a full listing."""
    with _firestore_call("record the mirror rebuild"):
        _sync_ref(calendar_id).set(
            {"calendarId": calendar_id, "mirrorRebuiltAt": datetime.now(UTC)}, merge=True
        )
