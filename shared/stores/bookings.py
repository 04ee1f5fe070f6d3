"""The booking store: every Firestore call on ``virtualClasses``, ``users`` and ``userActivities``.

A booking is a ``virtualClasses`` document in the seed's shape. Its ``status`` keeps the
seed's values (``pending``, ``scheduled``, ``completed``, ``cancelled``); the work
classcal does on it is tracked beside it, in fields the seed does not have:

- ``schedulingState``: ``working`` (a delivery holds the lease), ``waiting`` (the last
  attempt hit a transient failure; it is retried), ``failed`` (a retry cannot fix it),
  ``done`` (the last scheduling or cancellation finished);
- ``schedulingReason`` / ``schedulingMessage``: why it waits or failed, as a machine code
  and a plain-language sentence for the admin;
- ``schedulingLeaseOwner`` / ``schedulingLeaseUntil``: the lease that keeps two
  deliveries from working on one booking at once. A process killed mid-way simply
  lets it expire.

Every read-decide-write is one Firestore transaction. The rules (what to decide) live
in ``shared.domain.scheduling``; this module only stores and reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from shared.core import intervals
from shared.core.errors import BookingBusy, BookingNotFound, InvalidBooking, StoreUnavailable
from shared.core.logs import get_logger
from shared.stores import db, slots
from shared.stores.leases import LeaseFields

if TYPE_CHECKING:
    from google.cloud import firestore

log = get_logger(__name__)

BOOKINGS = db.BOOKINGS
USERS = "users"
ACTIVITIES = "userActivities"

# The seed's booking statuses.
PENDING = "pending"
SCHEDULED = "scheduled"
COMPLETED = "completed"
CANCELLED = "cancelled"

# schedulingState values.
WORKING = "working"
WAITING = "waiting"
FAILED = "failed"
DONE = "done"

# Payment statuses a later, different status must not overwrite: a payment that was
# approved or reversed stays so even if an older "pending" message arrives late.
FINAL_PAYMENT_STATUSES = frozenset({"approved", "refunded", "cancelled", "charged_back"})

LEASE = LeaseFields("schedulingLease")
READ_DEADLINE_SECONDS = 5.0

T = TypeVar("T")


@dataclass(frozen=True)
class Claim:
    """What a claim found. ``state``: ``claimed`` (the caller holds the lease now),
    ``scheduled`` (already scheduled or completed), ``cancelled`` (nothing to schedule),
    ``already_cancelled`` (a cancellation found nothing left to do)."""

    booking_id: str
    state: str
    data: dict[str, Any]


def _store_errors(what: str) -> contextlib.AbstractContextManager[None]:
    return db.firestore_errors(what)


def _read_retry() -> Any:
    return db.firestore_read_retry(READ_DEADLINE_SECONDS)


def _client() -> firestore.Client:
    return db.firestore_client()


def _booking_ref(booking_id: str) -> firestore.DocumentReference:
    return _client().collection(BOOKINGS).document(booking_id)


def _activity_ref(activity_id: str) -> firestore.DocumentReference:
    return _client().collection(ACTIVITIES).document(activity_id)


def _transact(what: str, body: Callable[[Any], T]) -> T:
    """Run ``body(transaction)`` in a Firestore transaction (retried on contention)."""
    from google.cloud import firestore

    with _store_errors(what):
        return firestore.transactional(body)(_client().transaction())


def _get_both(first: Any, second: Any, transaction: Any) -> tuple[Any, Any]:
    """Two documents in one round trip, inside the transaction."""
    found = {
        s.reference.path: s for s in _client().get_all([first, second], transaction=transaction)
    }
    return found[first.path], found[second.path]


def _now() -> datetime:
    return datetime.now(UTC)


def _lease_holder(data: Mapping[str, Any], now: datetime) -> str | None:
    """The owner of an unexpired lease on the booking, if any."""
    return LEASE.holder(data, now)


def _take_lease(
    data: Mapping[str, Any], booking_id: str, owner: str, lease_seconds: float, now: datetime
) -> dict[str, Any]:
    if LEASE.held_by_another(data, owner, now):
        raise BookingBusy(f"booking {booking_id} is being worked on by another delivery")
    return {**LEASE.grant(owner, lease_seconds, now), "schedulingState": WORKING}


def _without_sentinels(updates: Mapping[str, Any]) -> dict[str, Any]:
    """The updates as plain values, to merge into a returned snapshot."""
    from google.cloud import firestore

    sentinels = (firestore.SERVER_TIMESTAMP, firestore.DELETE_FIELD)
    return {
        k: v
        for k, v in updates.items()
        if not any(v is s for s in sentinels) and not isinstance(v, firestore.Increment)
    }


# --- reads ---


def find_booking_id(preference_id: str) -> str:
    """The id of the booking paid by ``preference_id``.

    BookingNotFound when there is none; InvalidBooking when several share it (the
    payment cannot be attributed, so a person must look).
    """
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        _client()
        .collection(BOOKINGS)
        .where(filter=FieldFilter("preferenceId", "==", preference_id))
        .limit(2)
    )
    with _store_errors("find the booking"):
        found = [snapshot.id for snapshot in query.get(retry=_read_retry(), timeout=5.0)]
    if not found:
        raise BookingNotFound(f"no booking has preferenceId {preference_id!r}")
    if len(found) > 1:
        raise InvalidBooking(
            f"several bookings have preferenceId {preference_id!r}", code="duplicate_preference"
        )
    return found[0]


def get_user_email(user_id: str) -> str | None:
    """``users/{user_id}.email``, or None when the user or the email is missing."""
    with _store_errors("read the student"):
        snapshot = (
            _client().collection(USERS).document(user_id).get(retry=_read_retry(), timeout=5.0)
        )
    email = (snapshot.to_dict() or {}).get("email") if snapshot.exists else None
    return email if isinstance(email, str) and email else None


def get_activity(activity_id: str) -> dict[str, Any] | None:
    with _store_errors("read the user activity"):
        snapshot = _activity_ref(activity_id).get(retry=_read_retry(), timeout=5.0)
    return snapshot.to_dict() if snapshot.exists else None


# --- scheduling ---


SLOT_TAKEN = "slot_taken"


def claim_for_scheduling(
    booking_id: str,
    *,
    owner: str,
    lease_seconds: float,
    payment_fields: Mapping[str, Any],
    price: float | None,
    guard: slots.Guard | None = None,
) -> Claim:
    """Take the booking's lease to schedule it, recording the payment and the price.

    A scheduled, completed or cancelled booking is returned untouched (its state says
    which). BookingBusy when another delivery holds an unexpired lease. ``price`` None
    keeps the booking's own ``classPrice``.

    With a ``guard``, the same transaction first decides whether the booking's time is
    free on its calendar (see ``shared.stores.slots``): free, the booking claims it
    (``slotClaim``) and the lease is taken; taken, the booking is marked failed with
    ``slot_taken`` and the Claim's state is SLOT_TAKEN, ``data["slotTaken"]`` saying by
    what. A booking that already holds a claim for the same times keeps it.
    """
    from google.cloud import firestore

    ref = _booking_ref(booking_id)
    checkouts: list[Any] = []
    seen_times: tuple[Any, Any] | None = None
    if guard is not None:
        with _store_errors("read the booking"):
            before = ref.get(retry=_read_retry(), timeout=READ_DEADLINE_SECONDS).to_dict() or {}
        seen_times = (before.get("startTime"), before.get("endTime"))
        start = intervals.parse_instant(seen_times[0])
        end = intervals.parse_instant(seen_times[1])
        if start is not None and end is not None and end > start:
            checkouts = slots.overlapping_checkouts(_client(), booking_id, start, end)

    def body(transaction: Any) -> Claim:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            raise BookingNotFound(f"booking {booking_id} does not exist")
        data = snapshot.to_dict() or {}
        status = data.get("status")
        if status in (SCHEDULED, COMPLETED):
            return Claim(booking_id, SCHEDULED, data)
        if status == CANCELLED:
            return Claim(booking_id, CANCELLED, data)
        now = _now()
        if LEASE.held_by_another(data, owner, now):
            raise BookingBusy(f"booking {booking_id} is being worked on by another delivery")
        if guard is not None and (data.get("startTime"), data.get("endTime")) != seen_times:
            raise StoreUnavailable(f"booking {booking_id} changed its time while being checked")
        guarded = (
            slots.guard(transaction, _client(), snapshot, guard, now, checkouts) if guard else {}
        )
        if guarded.get("slotTaken") is not None:
            taken = guarded["slotTaken"]
            transaction.update(
                ref,
                {
                    **payment_fields,
                    "schedulingState": FAILED,
                    "schedulingReason": SLOT_TAKEN,
                    "schedulingMessage": slots.taken_message(taken),
                    "schedulingUpdatedAt": firestore.SERVER_TIMESTAMP,
                    "lastAttemptAt": now,
                },
            )
            return Claim(booking_id, SLOT_TAKEN, {**data, "slotTaken": taken})
        updates: dict[str, Any] = {
            **guarded,
            **payment_fields,
            **_take_lease(data, booking_id, owner, lease_seconds, now),
            "schedulingAttempts": firestore.Increment(1),
            "lastAttemptAt": now,
        }
        if price is not None:
            updates["classPrice"] = price
        transaction.update(ref, updates)
        attempts = data.get("schedulingAttempts")
        merged = {**data, **_without_sentinels(updates)}
        merged["schedulingAttempts"] = (attempts if isinstance(attempts, int) else 0) + 1
        return Claim(booking_id, "claimed", merged)

    return _transact("claim the booking", body)


def release_lease(
    booking_id: str,
    *,
    owner: str,
    state: str,
    reason: str,
    message: str,
    fields: Mapping[str, Any] | None = None,
) -> bool:
    """Give the lease back, saying why the work stopped (``waiting`` or ``failed``).

    Writes nothing when another delivery has taken the lease over since, or the booking
    was scheduled or cancelled meanwhile: their state is the truth. Returns whether it
    wrote.
    """
    from google.cloud import firestore

    ref = _booking_ref(booking_id)

    def body(transaction: Any) -> bool:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            return False
        data = snapshot.to_dict() or {}
        if not LEASE.owned_by(data, owner):
            return False
        updates: dict[str, Any] = LEASE.cleared(firestore.DELETE_FIELD)
        if data.get("status") in (SCHEDULED, COMPLETED):
            transaction.update(ref, updates)
            return False
        if state == FAILED:
            updates.update(slots.release_claim_of(transaction, data, booking_id))
        updates.update(
            {
                **(fields or {}),
                "schedulingState": state,
                "schedulingReason": reason,
                "schedulingMessage": message,
                "schedulingUpdatedAt": firestore.SERVER_TIMESTAMP,
            }
        )
        transaction.update(ref, updates)
        return True

    return _transact("release the booking", body)


def complete_scheduling(
    booking_id: str,
    *,
    fields: Mapping[str, Any],
    access_code: str,
    activity_id: str,
    activity: Mapping[str, Any],
) -> str:
    """Write the scheduled booking and create its user activity, in one transaction.

    Returns ``scheduled``; ``already_scheduled`` when another delivery finished first
    (its access code stays); ``cancelled`` when the booking was cancelled meanwhile:
    then only ``googleEventId`` is recorded, with ``eventDeleted: False``, so that the
    event this delivery made is removed by whoever looks next.
    The access code is set once: a code already on the booking is kept.
    """
    from google.cloud import firestore

    ref = _booking_ref(booking_id)
    activity_ref = _activity_ref(activity_id)

    def body(transaction: Any) -> str:
        snapshot, activity_snapshot = _get_both(ref, activity_ref, transaction)
        if not snapshot.exists:
            raise BookingNotFound(f"booking {booking_id} was deleted while being scheduled")
        data = snapshot.to_dict() or {}
        status = data.get("status")
        if status in (SCHEDULED, COMPLETED):
            return "already_scheduled"
        if status == CANCELLED:
            transaction.update(
                ref, {"googleEventId": fields["googleEventId"], "eventDeleted": False}
            )
            return CANCELLED
        updates: dict[str, Any] = {
            **fields,
            "accessCode": data.get("accessCode") or access_code,
            "status": SCHEDULED,
            "scheduledAt": firestore.SERVER_TIMESTAMP,
            "schedulingState": DONE,
            "schedulingReason": firestore.DELETE_FIELD,
            "schedulingMessage": firestore.DELETE_FIELD,
            "schedulingUpdatedAt": firestore.SERVER_TIMESTAMP,
            **LEASE.cleared(firestore.DELETE_FIELD),
        }
        transaction.update(ref, updates)
        if not activity_snapshot.exists:
            transaction.create(activity_ref, dict(activity))
        return SCHEDULED

    return _transact("write the scheduled booking", body)


def read_activities(activity_ids: Sequence[str], transaction: Any) -> list[Any]:
    """User activities read inside ``transaction`` (reads come before any write)."""
    if not activity_ids:
        return []
    refs = [_activity_ref(a) for a in activity_ids]
    return list(_client().get_all(refs, transaction=transaction))


def cancel_activities(snapshots: Sequence[Any], transaction: Any) -> None:
    """Mark the read activities cancelled, those that exist and are not yet."""
    from google.cloud import firestore

    for snapshot in snapshots:
        data = snapshot.to_dict() if snapshot.exists else None
        if data is not None and data.get("status") != CANCELLED:
            transaction.update(
                snapshot.reference,
                {"status": CANCELLED, "cancelledAt": firestore.SERVER_TIMESTAMP},
            )


# --- other payment statuses ---


def record_payment_status(booking_id: str, payment_fields: Mapping[str, Any]) -> bool:
    """Record a non-final payment status (pending, rejected, ...) on a booking.

    Never downgrades: a scheduled, completed or cancelled booking, or one whose payment
    is already approved or reversed, is left as it is. Returns whether it wrote.
    """
    ref = _booking_ref(booking_id)

    def body(transaction: Any) -> bool:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            raise BookingNotFound(f"booking {booking_id} does not exist")
        data = snapshot.to_dict() or {}
        if data.get("status") in (SCHEDULED, COMPLETED, CANCELLED):
            return False
        if data.get("paymentStatus") in FINAL_PAYMENT_STATUSES:
            return False
        transaction.update(ref, dict(payment_fields))
        return True

    return _transact("record the payment status", body)


# --- calendar sync ---
# Changes made in Google Calendar (shared/sync.py) and maintenance's reconciliation
# (shared/maintenance.py). Every write is a transaction that compares before writing.


def live_holds(hold_minutes: int, now: datetime) -> list[slots.Slot]:
    """The times checkouts in progress hold (pending bookings younger than the hold)."""
    return slots.read_live_holds(_client(), hold_minutes, now)
