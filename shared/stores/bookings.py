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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from shared.core.errors import BookingBusy, BookingNotFound, InvalidBooking
from shared.core.logs import get_logger
from shared.stores import db

if TYPE_CHECKING:
    from google.cloud import firestore

log = get_logger(__name__)

BOOKINGS = "virtualClasses"
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

_LEASE_FIELDS = ("schedulingLeaseOwner", "schedulingLeaseUntil")
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
    owner = data.get("schedulingLeaseOwner")
    until = data.get("schedulingLeaseUntil")
    if isinstance(owner, str) and isinstance(until, datetime) and until > now:
        return owner
    return None


def _take_lease(
    data: Mapping[str, Any], booking_id: str, owner: str, lease_seconds: float, now: datetime
) -> dict[str, Any]:
    holder = _lease_holder(data, now)
    if holder is not None and holder != owner:
        raise BookingBusy(f"booking {booking_id} is being worked on by another delivery")
    return {
        "schedulingLeaseOwner": owner,
        "schedulingLeaseUntil": now + timedelta(seconds=lease_seconds),
        "schedulingState": WORKING,
    }


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


def claim_for_scheduling(
    booking_id: str,
    *,
    owner: str,
    lease_seconds: float,
    payment_fields: Mapping[str, Any],
    price: float | None,
) -> Claim:
    """Take the booking's lease to schedule it, recording the payment and the price.

    A scheduled, completed or cancelled booking is returned untouched (its state says
    which). BookingBusy when another delivery holds an unexpired lease.
    ``price`` None keeps the booking's own ``classPrice``.
    """
    from google.cloud import firestore

    ref = _booking_ref(booking_id)

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
        updates: dict[str, Any] = {
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
        if data.get("schedulingLeaseOwner") != owner:
            return False
        updates: dict[str, Any] = {name: firestore.DELETE_FIELD for name in _LEASE_FIELDS}
        if data.get("status") in (SCHEDULED, COMPLETED):
            transaction.update(ref, updates)
            return False
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
            **{name: firestore.DELETE_FIELD for name in _LEASE_FIELDS},
        }
        transaction.update(ref, updates)
        if not activity_snapshot.exists:
            transaction.create(activity_ref, dict(activity))
        return SCHEDULED

    return _transact("write the scheduled booking", body)


# --- cancellation ---


def claim_for_cancellation(
    booking_id: str,
    *,
    owner: str,
    lease_seconds: float,
    reason: str,
    payment_fields: Mapping[str, Any],
) -> Claim:
    """Mark the booking cancelled and take its lease to remove its Calendar event.

    The status changes at once, so that a later ``approved`` delivery finds it
    cancelled. ``eventDeleted`` is set False until the event is known to be gone.
    ``already_cancelled`` when a previous cancellation finished (only a changed payment
    status is recorded). BookingBusy while another delivery holds the lease: a
    scheduling in progress finishes first, then this cancellation removes its event.
    """
    from google.cloud import firestore

    ref = _booking_ref(booking_id)

    def body(transaction: Any) -> Claim:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            raise BookingNotFound(f"booking {booking_id} does not exist")
        data = snapshot.to_dict() or {}
        now = _now()
        if data.get("status") == CANCELLED and data.get("eventDeleted") is not False:
            changed = {k: v for k, v in payment_fields.items() if data.get(k) != v}
            if changed:
                transaction.update(ref, changed)
            return Claim(booking_id, "already_cancelled", {**data, **changed})
        updates: dict[str, Any] = {
            **payment_fields,
            **_take_lease(data, booking_id, owner, lease_seconds, now),
            "status": CANCELLED,
            "eventDeleted": False,
        }
        if data.get("status") != CANCELLED:
            updates["cancellationReason"] = reason
            updates["cancelledAt"] = firestore.SERVER_TIMESTAMP
        transaction.update(ref, updates)
        return Claim(booking_id, "claimed", {**data, **_without_sentinels(updates)})

    return _transact("cancel the booking", body)


def complete_cancellation(booking_id: str, *, owner: str, activity_id: str) -> None:
    """Record that the booking's event is gone and mark its user activity cancelled."""
    from google.cloud import firestore

    ref = _booking_ref(booking_id)
    activity_ref = _activity_ref(activity_id)

    def body(transaction: Any) -> None:
        snapshot, activity_snapshot = _get_both(ref, activity_ref, transaction)
        if not snapshot.exists:
            return
        data = snapshot.to_dict() or {}
        updates: dict[str, Any] = {
            "eventDeleted": True,
            "schedulingState": DONE,
            "schedulingReason": firestore.DELETE_FIELD,
            "schedulingMessage": firestore.DELETE_FIELD,
            "schedulingUpdatedAt": firestore.SERVER_TIMESTAMP,
        }
        if data.get("schedulingLeaseOwner") in (owner, None):
            updates.update({name: firestore.DELETE_FIELD for name in _LEASE_FIELDS})
        transaction.update(ref, updates)
        activity = (activity_snapshot.to_dict() or {}) if activity_snapshot.exists else None
        if activity is not None and activity.get("status") != CANCELLED:
            transaction.update(
                activity_ref, {"status": CANCELLED, "cancelledAt": firestore.SERVER_TIMESTAMP}
            )

    _transact("finish the cancellation", body)


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

CANCELLED_IN_GOOGLE = "cancelled_in_google_calendar"
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class EventCheck:
    """A scheduled booking whose event maintenance checks; ``cursor`` resumes after it."""

    booking_id: str
    event_id: str
    cursor: dict[str, Any]


def booking_id_for_event(event_id: str) -> str | None:
    """The booking linked to a Calendar event (for tombstones that carry only their id)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        _client()
        .collection(BOOKINGS)
        .where(filter=FieldFilter("googleEventId", "==", event_id))
        .limit(1)
    )
    with _store_errors("find the booking of an event"):
        found = [s.id for s in query.get(retry=_read_retry(), timeout=5.0)]
    return found[0] if found else None


def apply_calendar_change(
    booking_id: str,
    *,
    event_id: str,
    cancelled: bool,
    start: datetime | None,
    end: datetime | None,
    meet_link: str | None,
    updated: datetime | None,
    sequence: int,
    activity_id: str,
) -> str:
    """Bring a scheduled booking in step with its event as Google Calendar has it now.

    Returns ``cancelled`` or ``updated`` when it wrote, otherwise why not: ``unchanged``,
    ``stale`` (an older version of the event than one already applied), ``missing``,
    ``not_linked`` (the booking records another event, or none yet: create_event writes
    the event it made), ``not_scheduled`` or ``already_cancelled``. A cancellation also
    marks the booking's user activity cancelled, as a refund does.
    """
    from google.cloud import firestore

    ref = _booking_ref(booking_id)
    activity_ref = _activity_ref(activity_id)

    def body(transaction: Any) -> str:
        snapshot = ref.get(transaction=transaction)
        activity_snapshot = activity_ref.get(transaction=transaction) if cancelled else None
        if not snapshot.exists:
            return "missing"
        data = snapshot.to_dict() or {}
        if data.get("googleEventId") != event_id:
            return "not_linked"
        if data.get("status") == CANCELLED:
            return "already_cancelled"
        if data.get("status") != SCHEDULED:
            return "not_scheduled"
        applied = data.get("calendarEventUpdated")
        if updated is not None and isinstance(applied, datetime):
            applied_sequence = data.get("calendarEventSequence")
            applied_sequence = applied_sequence if isinstance(applied_sequence, int) else 0
            if (updated, sequence) < (applied, applied_sequence):
                return "stale"
        updates: dict[str, Any] = {}
        if cancelled:
            updates = {
                "status": CANCELLED,
                "cancellationReason": CANCELLED_IN_GOOGLE,
                "cancelledAt": firestore.SERVER_TIMESTAMP,
                "eventDeleted": True,  # Google deleted it: nothing left to remove
            }
        else:
            if start is not None and start != data.get("startTime"):
                updates["startTime"] = start
            if end is not None and end != data.get("endTime"):
                updates["endTime"] = end
            if meet_link and meet_link != data.get("htmlLink"):
                updates["htmlLink"] = meet_link
        if not updates:
            return "unchanged"
        if updated is not None:
            updates["calendarEventUpdated"] = updated
            updates["calendarEventSequence"] = sequence
        updates["calendarSyncedAt"] = firestore.SERVER_TIMESTAMP
        transaction.update(ref, updates)
        activity = activity_snapshot.to_dict() if activity_snapshot is not None else None
        if activity is not None and activity.get("status") != CANCELLED:
            transaction.update(
                activity_ref, {"status": CANCELLED, "cancelledAt": firestore.SERVER_TIMESTAMP}
            )
        return "cancelled" if cancelled else "updated"

    return _transact("apply a calendar change", body)


def bookings_to_reconcile(*, grace: timedelta, limit: int) -> list[str]:
    """Paid bookings without an event that nobody has tried for ``grace``: not yet scheduled
    (waiting on a transient reason, or left by a message that went to the dead-letter
    topic), oldest attempt first. Bookings that failed permanently are left alone."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        _client()
        .collection(BOOKINGS)
        .where(filter=FieldFilter("status", "==", PENDING))
        .where(filter=FieldFilter("paymentStatus", "==", "approved"))
        .limit(limit * 5)  # a few may be skipped below (failed, leased)
    )
    now = _now()
    with _store_errors("list bookings to reconcile"):
        snapshots = list(query.get(retry=_read_retry(), timeout=10.0))
    due: list[tuple[datetime, str]] = []
    for snapshot in snapshots:
        data = snapshot.to_dict() or {}
        if data.get("schedulingState") == FAILED or _lease_holder(data, now) is not None:
            continue
        times = [data.get("lastAttemptAt"), data.get("schedulingUpdatedAt")]
        last = max((t for t in times if isinstance(t, datetime)), default=_NEVER)
        if last <= now - grace:
            due.append((last, snapshot.id))
    return [booking_id for _, booking_id in sorted(due)[:limit]]


def cancellations_to_finish(*, grace: timedelta, limit: int) -> list[tuple[str, str]]:
    """Cancelled bookings whose event removal has waited longer than ``grace``: (id, reason)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        _client()
        .collection(BOOKINGS)
        .where(filter=FieldFilter("status", "==", CANCELLED))
        .where(filter=FieldFilter("eventDeleted", "==", False))
        .limit(limit)
    )
    now = _now()
    with _store_errors("list unfinished cancellations"):
        snapshots = list(query.get(retry=_read_retry(), timeout=10.0))
    found = []
    for snapshot in snapshots:
        data = snapshot.to_dict() or {}
        last = data.get("schedulingUpdatedAt") or data.get("cancelledAt")
        if _lease_holder(data, now) is None and (
            not isinstance(last, datetime) or last <= now - grace
        ):
            found.append((snapshot.id, str(data.get("cancellationReason") or "cancelled")))
    return found


def scheduled_bookings_to_check(
    after: Mapping[str, Any] | None, limit: int
) -> tuple[list[EventCheck], dict[str, Any] | None]:
    """Scheduled bookings of classes not yet over, by end time, resuming after ``after``,
    and where the next page starts (None once the end is reached). Bookings without an
    event id are skipped but still move the cursor.

    Needs the composite index (status ASC, endTime ASC) in Firestore.
    """
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        _client()
        .collection(BOOKINGS)
        .where(filter=FieldFilter("status", "==", SCHEDULED))
        .where(filter=FieldFilter("endTime", ">", _now()))
        .order_by("endTime")
        .order_by("__name__")
    )
    if after and isinstance(after.get("endTime"), datetime) and isinstance(after.get("id"), str):
        query = query.start_after(
            {"endTime": after["endTime"], "__name__": _booking_ref(after["id"])}
        )
    checks: list[EventCheck] = []
    with _store_errors("list scheduled bookings"):
        snapshots = list(query.limit(limit).get(retry=_read_retry(), timeout=10.0))
    cursor: dict[str, Any] | None = None
    for snapshot in snapshots:
        data = snapshot.to_dict() or {}
        event_id = data.get("googleEventId")
        cursor = {"endTime": data.get("endTime"), "id": snapshot.id}
        if isinstance(event_id, str) and event_id:
            checks.append(EventCheck(snapshot.id, event_id, cursor))
    return checks, (cursor if len(snapshots) == limit else None)


def flag_missing_event(booking_id: str, event_id: str, reason: str) -> bool:
    """Mark a scheduled booking whose event is not in the calendar; True when newly flagged.

    The status is left alone: a person decides (the calendar may have been changed by
    mistake), the flag and the ERROR log line tell them.
    """
    from google.cloud import firestore

    ref = _booking_ref(booking_id)

    def body(transaction: Any) -> bool:
        snapshot = ref.get(transaction=transaction)
        data = (snapshot.to_dict() or {}) if snapshot.exists else {}
        if data.get("status") != SCHEDULED or data.get("googleEventId") != event_id:
            return False
        if (data.get("eventMissing") or {}).get("reason") == reason:
            return False
        transaction.update(
            ref,
            {
                "eventMissing": {
                    "reason": reason,
                    "eventId": event_id,
                    "since": firestore.SERVER_TIMESTAMP,
                }
            },
        )
        return True

    return _transact("flag a missing event", body)
