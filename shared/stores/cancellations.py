"""Cancelling a booking in Firestore: the status at once, then the event's removal recorded.

Two transactions bracket the Calendar call (``shared.domain.cancellation``): the first
marks the booking cancelled and takes its lease, so a later ``approved`` finds it
cancelled and its slot is free at once; the second records that the event is gone and
marks the host's and every guest's user activity cancelled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.core.errors import BookingNotFound
from shared.stores import bookings, slots


def claim_for_cancellation(
    booking_id: str,
    *,
    owner: str,
    lease_seconds: float,
    reason: str,
    payment_fields: Mapping[str, Any],
) -> bookings.Claim:
    """Mark the booking cancelled and take its lease to remove its Calendar event.

    The status changes at once, so that a later ``approved`` delivery finds it
    cancelled. ``eventDeleted`` is set False until the event is known to be gone.
    ``already_cancelled`` when a previous cancellation finished (only a changed payment
    status is recorded). BookingBusy while another delivery holds the lease: a
    scheduling in progress finishes first, then this cancellation removes its event.
    """
    from google.cloud import firestore

    ref = bookings._booking_ref(booking_id)

    def body(transaction: Any) -> bookings.Claim:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            raise BookingNotFound(f"booking {booking_id} does not exist")
        data = snapshot.to_dict() or {}
        now = bookings._now()
        if data.get("status") == bookings.CANCELLED and data.get("eventDeleted") is not False:
            changed = {k: v for k, v in payment_fields.items() if data.get(k) != v}
            if changed:
                transaction.update(ref, changed)
            return bookings.Claim(booking_id, "already_cancelled", {**data, **changed})
        updates: dict[str, Any] = {
            **payment_fields,
            **bookings._take_lease(data, booking_id, owner, lease_seconds, now),
            **slots.release_claim_of(transaction, data, booking_id),
            "status": bookings.CANCELLED,
            "eventDeleted": False,
        }
        if data.get("status") != bookings.CANCELLED:
            updates["cancellationReason"] = reason
            updates["cancelledAt"] = firestore.SERVER_TIMESTAMP
        transaction.update(ref, updates)
        return bookings.Claim(
            booking_id, "claimed", {**data, **bookings._without_sentinels(updates)}
        )

    return bookings._transact("cancel the booking", body)


def complete_cancellation(
    booking_id: str,
    *,
    owner: str,
    activity_id: str,
    guest_activity_ids: Sequence[str] = (),
) -> None:
    """Record that the booking's event is gone and mark its user activity cancelled,
    with the activities of its guests (``guest_activity_ids``) in the same transaction."""
    from google.cloud import firestore

    ref = bookings._booking_ref(booking_id)
    activity_ref = bookings._activity_ref(activity_id)

    def body(transaction: Any) -> None:
        snapshot, activity_snapshot = bookings._get_both(ref, activity_ref, transaction)
        guests = bookings.read_activities(guest_activity_ids, transaction)
        if not snapshot.exists:
            return
        data = snapshot.to_dict() or {}
        updates: dict[str, Any] = {
            "eventDeleted": True,
            "schedulingState": bookings.DONE,
            "schedulingReason": firestore.DELETE_FIELD,
            "schedulingMessage": firestore.DELETE_FIELD,
            "schedulingUpdatedAt": firestore.SERVER_TIMESTAMP,
        }
        if data.get(bookings.LEASE.owner_field) in (owner, None):
            updates.update(bookings.LEASE.cleared(firestore.DELETE_FIELD))
        transaction.update(ref, updates)
        activity = (activity_snapshot.to_dict() or {}) if activity_snapshot.exists else None
        if activity is not None and activity.get("status") != bookings.CANCELLED:
            transaction.update(
                activity_ref,
                {"status": bookings.CANCELLED, "cancelledAt": firestore.SERVER_TIMESTAMP},
            )
        bookings.cancel_activities(guests, transaction)

    bookings._transact("finish the cancellation", body)
