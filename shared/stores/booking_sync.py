"""What the calendar sync and maintenance read and write on bookings.

A change made in Google Calendar (a class moved, its Meet link replaced, its event
deleted) reaches its booking through ``apply_calendar_change``; maintenance finds the
bookings that need another look (``bookings_to_reconcile``, ``cancellations_to_finish``,
``scheduled_bookings_to_check``). The booking's document shape and lease are
``shared.stores.bookings``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core import intervals
from shared.core.logs import get_logger
from shared.stores import bookings, slots

log = get_logger(__name__)

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
        bookings._client()
        .collection(bookings.BOOKINGS)
        .where(filter=FieldFilter("googleEventId", "==", event_id))
        .limit(1)
    )
    with bookings._store_errors("find the booking of an event"):
        found = [s.id for s in query.get(retry=bookings._read_retry(), timeout=5.0)]
    return found[0] if found else None


def _move_claim(
    transaction: Any, data: dict[str, Any], booking_id: str, start: Any, end: Any
) -> dict[str, Any]:
    record = data.get("slotClaim")
    start, end = intervals.parse_instant(start), intervals.parse_instant(end)
    if not isinstance(record, dict) or start is None or end is None or end <= start:
        return {}
    slots.release(transaction, slots.refs_of_record(record), booking_id)
    calendar_id = str(record.get("calendarId"))
    slots.claim(transaction, slots.claim_refs(calendar_id, start, end), booking_id, start, end)
    return {"slotClaim": slots.claim_record(calendar_id, start, end)}


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
    guest_activity_ids: Callable[[Mapping[str, Any]], list[str]] | None = None,
) -> str:
    """Bring a scheduled booking in step with its event as Google Calendar has it now.

    Returns ``cancelled`` or ``updated`` when it wrote, otherwise why not: ``unchanged``,
    ``stale`` (an older version of the event than one already applied), ``missing``,
    ``not_linked`` (the booking records another event, or none yet: create_event writes
    the event it made), ``not_scheduled`` or ``already_cancelled``. A cancellation also
    marks the booking's user activity cancelled, as a refund does, and those that
    ``guest_activity_ids(booking)`` names (its guests').
    """
    from google.cloud import firestore

    ref = bookings._booking_ref(booking_id)
    activity_ref = bookings._activity_ref(activity_id)

    def body(transaction: Any) -> str:
        snapshot = ref.get(transaction=transaction)
        activity_snapshot = activity_ref.get(transaction=transaction) if cancelled else None
        if not snapshot.exists:
            return "missing"
        data = snapshot.to_dict() or {}
        guests = (
            bookings.read_activities(guest_activity_ids(data), transaction)
            if cancelled and guest_activity_ids is not None
            else []
        )
        if data.get("googleEventId") != event_id:
            return "not_linked"
        if data.get("status") == bookings.CANCELLED:
            return "already_cancelled"
        if data.get("status") != bookings.SCHEDULED:
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
                "status": bookings.CANCELLED,
                "cancellationReason": CANCELLED_IN_GOOGLE,
                "cancelledAt": firestore.SERVER_TIMESTAMP,
                "eventDeleted": True,  # Google deleted it: nothing left to remove
                **slots.release_claim_of(transaction, data, booking_id),
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
        if ("startTime" in updates or "endTime" in updates) and data.get("slotClaim"):
            # The admin moved the class in Google: its claim follows (Google is the truth).
            new_start = updates.get("startTime", data.get("startTime"))
            new_end = updates.get("endTime", data.get("endTime"))
            updates.update(_move_claim(transaction, data, booking_id, new_start, new_end))
        if updated is not None:
            updates["calendarEventUpdated"] = updated
            updates["calendarEventSequence"] = sequence
        updates["calendarSyncedAt"] = firestore.SERVER_TIMESTAMP
        transaction.update(ref, updates)
        activity = activity_snapshot.to_dict() if activity_snapshot is not None else None
        if activity is not None and activity.get("status") != bookings.CANCELLED:
            transaction.update(
                activity_ref,
                {"status": bookings.CANCELLED, "cancelledAt": firestore.SERVER_TIMESTAMP},
            )
        if cancelled:
            bookings.cancel_activities(guests, transaction)
        return "cancelled" if cancelled else "updated"

    return bookings._transact("apply a calendar change", body)


def bookings_to_reconcile(*, grace: timedelta, limit: int) -> list[str]:
    """Paid bookings without an event that nobody has tried for ``grace``: not yet scheduled
    (waiting on a transient reason, or left by a message that went to the dead-letter
    topic), oldest attempt first. Bookings that failed permanently are left alone."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        bookings._client()
        .collection(bookings.BOOKINGS)
        .where(filter=FieldFilter("status", "==", bookings.PENDING))
        .where(filter=FieldFilter("paymentStatus", "==", "approved"))
        .limit(limit * 5)  # a few may be skipped below (failed, leased)
    )
    now = bookings._now()
    with bookings._store_errors("list bookings to reconcile"):
        snapshots = list(query.get(retry=bookings._read_retry(), timeout=10.0))
    due: list[tuple[datetime, str]] = []
    for snapshot in snapshots:
        data = snapshot.to_dict() or {}
        if (
            data.get("schedulingState") == bookings.FAILED
            or bookings._lease_holder(data, now) is not None
        ):
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
        bookings._client()
        .collection(bookings.BOOKINGS)
        .where(filter=FieldFilter("status", "==", bookings.CANCELLED))
        .where(filter=FieldFilter("eventDeleted", "==", False))
        .limit(limit)
    )
    now = bookings._now()
    with bookings._store_errors("list unfinished cancellations"):
        snapshots = list(query.get(retry=bookings._read_retry(), timeout=10.0))
    found = []
    for snapshot in snapshots:
        data = snapshot.to_dict() or {}
        last = data.get("schedulingUpdatedAt") or data.get("cancelledAt")
        if bookings._lease_holder(data, now) is None and (
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
        bookings._client()
        .collection(bookings.BOOKINGS)
        .where(filter=FieldFilter("status", "==", bookings.SCHEDULED))
        .where(filter=FieldFilter("endTime", ">", bookings._now()))
        .order_by("endTime")
        .order_by("__name__")
    )
    if after and isinstance(after.get("endTime"), datetime) and isinstance(after.get("id"), str):
        query = query.start_after(
            {"endTime": after["endTime"], "__name__": bookings._booking_ref(after["id"])}
        )
    checks: list[EventCheck] = []
    with bookings._store_errors("list scheduled bookings"):
        snapshots = list(query.limit(limit).get(retry=bookings._read_retry(), timeout=10.0))
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

    ref = bookings._booking_ref(booking_id)

    def body(transaction: Any) -> bool:
        snapshot = ref.get(transaction=transaction)
        data = (snapshot.to_dict() or {}) if snapshot.exists else {}
        if data.get("status") != bookings.SCHEDULED or data.get("googleEventId") != event_id:
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

    return bookings._transact("flag a missing event", body)
