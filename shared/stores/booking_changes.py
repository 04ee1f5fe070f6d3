"""What a change the platform asks for (topic ``booking-changes``) reads and writes on a booking.

A reschedule is decided in one transaction (``accept_reschedule``) that reads the
booking and the day documents of the new time, applies the slot guard's rules
(``shared.stores.slots``: the booking's own claim and own event do not count) and
either refuses it, recording the request and why on the booking, or accepts it: the
booking's claim moves from the old hours to the new ones and the booking's lease is
taken, in that same transaction. The Calendar event is then patched by whoever holds the
lease, and ``finish_reschedule`` moves the booking's times. The booking keeps:

- ``changeRequestedAt``: the ``requestedAt`` of the newest request seen, accepted or
  refused; an older (or equal, different) request is ignored, so that requests delivered
  out of order end with the one the platform sent last;
- ``reschedule``: that request (``startTime``, ``endTime``, ``requestedAt``), its
  ``state`` (``accepted`` until the event is patched, then ``done``; ``refused``; or
  ``failed`` when Google refused the patch) and, when refused or failed, ``reason`` and
  ``message``; ``previousStart``/``previousEnd`` are the times it replaced.

The booking's document shape and lease are ``shared.stores.bookings``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.core import intervals
from shared.core.errors import BookingBusy, BookingNotFound
from shared.core.logs import get_logger
from shared.stores import bookings, slots

log = get_logger(__name__)

ACCEPTED = "accepted"
DONE = "done"
REFUSED = "refused"
FAILED = "failed"

# Why a reschedule is refused (``reschedule.reason``).
SLOT_TAKEN = "slot_taken"
IN_PAST = "in_past"
NOT_SCHEDULED = "not_scheduled"
CANCELLED = "cancelled"
COMPLETED = "completed"
NO_EVENT = "no_event"

REASON_MESSAGES = {
    IN_PAST: "The new time has already begun; nothing was changed.",
    NOT_SCHEDULED: "The class is not scheduled yet, so it cannot be moved; nothing was changed.",
    CANCELLED: "The class is cancelled; nothing was changed.",
    COMPLETED: "The class has already taken place; nothing was changed.",
    NO_EVENT: "The class has no Calendar event to move; nothing was changed.",
}

PLATFORM_CANCEL = "cancelled_by_platform"


@dataclass(frozen=True)
class Decision:
    """What ``accept_reschedule`` decided. ``state``: ``accepted`` (the caller holds the
    lease and patches the event; ``resumed`` when an earlier delivery accepted it and
    did not finish), ``duplicate`` (this request was already done or refused),
    ``stale`` (a later request was already seen), ``unchanged`` (the class is already at
    that time), ``refused`` (``reason``, ``message``; ``taken`` for a slot taken)."""

    state: str
    data: dict[str, Any]
    reason: str | None = None
    message: str | None = None
    taken: slots.Taken | None = None
    resumed: bool = False


def _request(start: datetime, end: datetime, requested_at: datetime) -> dict[str, Any]:
    return {"startTime": start, "endTime": end, "requestedAt": requested_at}


def _same_request(stored: Any, wanted: Mapping[str, Any]) -> bool:
    if not isinstance(stored, dict):
        return False
    return all(intervals.parse_instant(stored.get(k)) == v for k, v in wanted.items())


def _status_refusal(data: Mapping[str, Any]) -> str | None:
    status = data.get("status")
    if status == bookings.CANCELLED:
        return CANCELLED
    if status == bookings.COMPLETED:
        return COMPLETED
    if status != bookings.SCHEDULED:
        return NOT_SCHEDULED
    if not isinstance(data.get("googleEventId"), str) or not data.get("googleEventId"):
        return NO_EVENT
    return None


def _refusal(data: Mapping[str, Any], start: datetime, now: datetime) -> str | None:
    refused = _status_refusal(data)
    if refused is None:
        ended = intervals.parse_instant(data.get("endTime"))
        if ended is not None and ended <= now:
            refused = COMPLETED  # it took place; maintenance marks it completed soon
        elif start <= now:
            refused = IN_PAST
    return refused


_CLASHES = {
    "class": "another class booked for that time",
    "event": "something already in the school's calendar",
    "checkout": "another student's booking that is being paid",
}


def taken_message(taken: slots.Taken) -> str:
    """What the booking says when the new time is taken; it names no one."""
    return (
        f"The new time is not free: it clashes with {_CLASHES[taken.what]} "
        f"({taken.start.isoformat()} to {taken.end.isoformat()}). Nothing was changed."
    )


def accept_reschedule(
    booking_id: str,
    *,
    start: datetime,
    end: datetime,
    requested_at: datetime,
    owner: str,
    lease_seconds: float,
    guard: slots.Guard | None,
) -> Decision:
    """Decide a reschedule to ``[start, end)`` in one transaction (see the module's text).

    BookingNotFound when there is no such booking; BookingBusy while another delivery
    holds the booking's lease (a scheduling, a cancellation, another reschedule).
    """
    from google.cloud import firestore

    client = bookings._client()
    ref = bookings._booking_ref(booking_id)
    wanted = _request(start, end, requested_at)
    # The checkouts that overlap the new time, found before the transaction (which then
    # reads just those): a reschedule does not contend with every checkout in progress.
    checkouts = (
        slots.overlapping_checkouts(client, booking_id, start, end) if guard is not None else []
    )

    def body(transaction: Any) -> Decision:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            raise BookingNotFound(f"booking {booking_id} does not exist")
        data = snapshot.to_dict() or {}
        now = bookings._now()
        stored = data.get("reschedule")
        if _same_request(stored, wanted) and stored.get("state") != ACCEPTED:
            return Decision("duplicate", data, stored.get("reason"))
        last = intervals.parse_instant(data.get("changeRequestedAt"))
        resumed = _same_request(stored, wanted)
        if not resumed and last is not None and requested_at <= last:
            return Decision("stale", data)
        if bookings.LEASE.held_by_another(data, owner, now):
            raise BookingBusy(f"booking {booking_id} is being worked on by another delivery")
        if (
            not resumed
            and isinstance(stored, dict)
            and stored.get("state") == ACCEPTED
            and data.get("status") == bookings.SCHEDULED
        ):
            # The earlier request may have patched the event already: it is finished (by
            # its redelivery, or by maintenance) before a later one is decided.
            raise BookingBusy(f"an earlier reschedule of booking {booking_id} is not finished")
        # An accepted request being finished is only stopped by the booking's own state.
        reason = _status_refusal(data) if resumed else _refusal(data, start, now)
        taken = None
        if reason is None and not resumed and guard is not None:
            claim_refs = slots.claim_refs(guard.calendar_id, start, end)
            day_refs = slots.day_refs(guard.calendar_id, start, end)
            found = {
                s.reference.path: s
                for s in client.get_all(
                    [*claim_refs, *day_refs, *checkouts], transaction=transaction
                )
            }
            claims = [found[r.path].to_dict() or {} for r in claim_refs if r.path in found]
            days = [found[r.path].to_dict() or {} for r in day_refs if r.path in found]
            holds = slots.live_holds(
                [found[r.path] for r in checkouts if r.path in found], now, guard.hold_minutes
            )
            # A request made now comes after every live checkout: any overlapping one wins.
            taken = slots.find_clash(claims, days, booking_id, start, end) or slots.hold_clash(
                holds, booking_id, start, end, None
            )
            reason = SLOT_TAKEN if taken is not None else None
        if reason is not None:
            message = taken_message(taken) if taken else REASON_MESSAGES[reason]
            transaction.update(
                ref,
                {
                    "changeRequestedAt": requested_at,
                    "reschedule": {
                        **wanted,
                        "state": REFUSED,
                        "reason": reason,
                        "message": message,
                        "decidedAt": firestore.SERVER_TIMESTAMP,
                    },
                },
            )
            return Decision(REFUSED, data, reason, message, taken)
        current = (
            intervals.parse_instant(data.get("startTime")),
            intervals.parse_instant(data.get("endTime")),
        )
        if not resumed and current == (start, end):
            transaction.update(
                ref,
                {
                    "changeRequestedAt": requested_at,
                    "reschedule": {
                        **wanted,
                        "state": DONE,
                        "decidedAt": firestore.SERVER_TIMESTAMP,
                    },
                },
            )
            return Decision("unchanged", data)
        updates: dict[str, Any] = {
            **bookings.LEASE.grant(owner, lease_seconds, now),
            "schedulingState": bookings.WORKING,
        }
        if not resumed:
            updates["changeRequestedAt"] = requested_at
            updates["reschedule"] = {
                **wanted,
                "state": ACCEPTED,
                "previousStart": current[0],
                "previousEnd": current[1],
                "decidedAt": firestore.SERVER_TIMESTAMP,
            }
            updates.update(_move_claim(transaction, data, booking_id, guard, start, end))
        transaction.update(ref, updates)
        return Decision(ACCEPTED, {**data, **updates}, resumed=resumed)

    return bookings._transact("decide a reschedule", body)


def _move_claim(
    transaction: Any,
    data: Mapping[str, Any],
    booking_id: str,
    guard: slots.Guard | None,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    """Release the booking's claim on its old hours and claim the new ones (writes only)."""
    record = data.get("slotClaim")
    calendar_id = guard.calendar_id if guard is not None else None
    if isinstance(record, dict):
        slots.release(transaction, slots.refs_of_record(record), booking_id)
        calendar_id = calendar_id or str(record.get("calendarId"))
    if calendar_id is None:
        return {}  # the slot guard is off and the booking never claimed a slot
    slots.claim(transaction, slots.claim_refs(calendar_id, start, end), booking_id, start, end)
    return {"slotClaim": slots.claim_record(calendar_id, start, end)}


def finish_reschedule(
    booking_id: str,
    *,
    owner: str,
    requested_at: datetime,
    fields: Mapping[str, Any],
) -> bool:
    """The event is patched: the booking's times (``fields``) follow, the lease is given
    back. Returns False (and writes nothing) when the request is no longer the booking's
    accepted one (a cancellation or a later request came first)."""
    from google.cloud import firestore

    ref = bookings._booking_ref(booking_id)

    def body(transaction: Any) -> bool:
        snapshot = ref.get(transaction=transaction)
        data = (snapshot.to_dict() or {}) if snapshot.exists else {}
        stored = data.get("reschedule")
        if not isinstance(stored, dict) or stored.get("state") != ACCEPTED:
            return False
        if intervals.parse_instant(stored.get("requestedAt")) != requested_at:
            return False
        updates: dict[str, Any] = {
            **fields,
            "reschedule.state": DONE,
            "rescheduledAt": firestore.SERVER_TIMESTAMP,
            "schedulingState": bookings.DONE,
            "schedulingUpdatedAt": firestore.SERVER_TIMESTAMP,
        }
        if bookings.LEASE.owned_by(data, owner):
            updates.update(bookings.LEASE.cleared(firestore.DELETE_FIELD))
        transaction.update(ref, updates)
        return True

    return bookings._transact("finish a reschedule", body)


def stop_reschedule(
    booking_id: str,
    *,
    owner: str,
    requested_at: datetime,
    reason: str,
    message: str,
    permanent: bool,
) -> None:
    """The patch did not happen. Transient: the lease is given back and the request stays
    accepted (its claim too), for the redelivery to finish. Permanent: the request is
    ``failed`` and the claim goes back to the booking's own times."""
    from google.cloud import firestore

    ref = bookings._booking_ref(booking_id)

    def body(transaction: Any) -> None:
        snapshot = ref.get(transaction=transaction)
        data = (snapshot.to_dict() or {}) if snapshot.exists else {}
        stored = data.get("reschedule")
        if not bookings.LEASE.owned_by(data, owner) or not isinstance(stored, dict):
            return
        updates: dict[str, Any] = {
            **bookings.LEASE.cleared(firestore.DELETE_FIELD),
            "schedulingUpdatedAt": firestore.SERVER_TIMESTAMP,
        }
        same = intervals.parse_instant(stored.get("requestedAt")) == requested_at
        if permanent and same and stored.get("state") == ACCEPTED:
            updates.update(
                {
                    "reschedule.state": FAILED,
                    "reschedule.reason": reason,
                    "reschedule.message": message,
                    "schedulingState": bookings.DONE,
                }
            )
            start = intervals.parse_instant(data.get("startTime"))
            end = intervals.parse_instant(data.get("endTime"))
            if start is not None and end is not None and end > start:
                updates.update(_move_claim(transaction, data, booking_id, None, start, end))
        else:
            updates.update(
                {
                    "schedulingState": bookings.WAITING,
                    "schedulingReason": reason,
                    "schedulingMessage": message,
                }
            )
        transaction.update(ref, updates)

    bookings._transact("record why a reschedule stopped", body)


def record_cancellation_note(booking_id: str, note: str) -> bool:
    """Keep the platform's reason on a booking it cancelled (once; a refund's stays alone)."""
    ref = bookings._booking_ref(booking_id)

    def body(transaction: Any) -> bool:
        snapshot = ref.get(transaction=transaction)
        data = (snapshot.to_dict() or {}) if snapshot.exists else {}
        if data.get("cancellationReason") != PLATFORM_CANCEL or data.get("cancellationNote"):
            return False
        transaction.update(ref, {"cancellationNote": note})
        return True

    return bookings._transact("record the cancellation's reason", body)


@dataclass(frozen=True)
class Unfinished:
    """An accepted reschedule nobody is finishing (its message was dead-lettered)."""

    booking_id: str
    start: datetime
    end: datetime
    requested_at: datetime


def reschedules_to_finish(*, grace: timedelta, limit: int) -> list[Unfinished]:
    """Accepted reschedules whose event was not patched and whose lease is free for
    longer than ``grace``: maintenance finishes them through the same code path."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        bookings._client()
        .collection(bookings.BOOKINGS)
        .where(filter=FieldFilter("reschedule.state", "==", ACCEPTED))
        .limit(limit * 5)
    )
    now = bookings._now()
    with bookings._store_errors("list unfinished reschedules"):
        snapshots = list(query.get(retry=bookings._read_retry(), timeout=10.0))
    found: list[Unfinished] = []
    for snapshot in snapshots:
        data = snapshot.to_dict() or {}
        request = data.get("reschedule") or {}
        times = [intervals.parse_instant(request.get(k)) for k in _REQUEST_KEYS]
        last = intervals.parse_instant(data.get("schedulingUpdatedAt") or request.get("decidedAt"))
        if bookings._lease_holder(data, now) is not None or None in times:
            continue
        if last is None or last <= now - grace:
            start, end, requested_at = times
            assert start is not None
            assert end is not None
            assert requested_at is not None
            found.append(Unfinished(snapshot.id, start, end, requested_at))
    return found[:limit]


_REQUEST_KEYS = ("startTime", "endTime", "requestedAt")
