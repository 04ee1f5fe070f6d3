"""Marking classes that took place ``completed``: the booking and every user activity of it.

Maintenance asks for scheduled bookings whose ``endTime`` is before a cutoff
(``classes_to_complete``, served by the composite index status ASC, endTime ASC), then
completes each in one transaction (``complete_class``) that reads the booking again: a
booking cancelled, moved later or being worked on meanwhile is left alone, and a booking
already completed is not counted twice. Its activities are every ``userActivities``
document whose ``classId`` is the booking (the host's and any guest's); a cancelled
activity stays cancelled.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.core import intervals
from shared.stores import bookings


def classes_to_complete(*, ended_before: datetime, limit: int) -> list[str]:
    """Scheduled bookings whose class ended before ``ended_before``, oldest first."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        bookings._client()
        .collection(bookings.BOOKINGS)
        .where(filter=FieldFilter("status", "==", bookings.SCHEDULED))
        .where(filter=FieldFilter("endTime", "<", ended_before))
        .order_by("endTime")
        .limit(limit)
    )
    with bookings._store_errors("list classes to complete"):
        return [s.id for s in query.get(retry=bookings._read_retry(), timeout=10.0)]


def complete_class(booking_id: str, *, ended_before: datetime) -> int | None:
    """Mark the booking ``completed`` and its activities ``completed: true``, at most once.

    Returns how many activities it marked, or None when it wrote nothing: the booking is
    not scheduled (already completed, cancelled), its class ends after the cutoff, it is
    flagged with a missing event (a person decides), or a delivery holds its lease.
    """
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    client = bookings._client()
    ref = bookings._booking_ref(booking_id)
    query = client.collection(bookings.ACTIVITIES).where(
        filter=FieldFilter("classId", "==", booking_id)
    )

    def body(transaction: Any) -> int | None:
        snapshot = ref.get(transaction=transaction)
        data = (snapshot.to_dict() or {}) if snapshot.exists else {}
        if data.get("status") != bookings.SCHEDULED or data.get("eventMissing"):
            return None
        end = intervals.parse_instant(data.get("endTime"))
        if end is None or end >= ended_before:
            return None
        if bookings._lease_holder(data, bookings._now()) is not None:
            return None
        activities = list(transaction.get(query))
        transaction.update(
            ref, {"status": bookings.COMPLETED, "completedAt": firestore.SERVER_TIMESTAMP}
        )
        marked = 0
        for activity in activities:
            values = activity.to_dict() or {}
            if values.get("status") == bookings.CANCELLED or values.get("completed") is True:
                continue
            transaction.update(
                activity.reference,
                {"completed": True, "completedAt": firestore.SERVER_TIMESTAMP},
            )
            marked += 1
        return marked

    return bookings._transact("mark a class completed", body)
