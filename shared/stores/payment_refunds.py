"""The booking reads and writes of MercadoPago payments: read a booking by id, and end
a booking whose time was taken once its payment is refunded.

A booking the slot guard refused is ``pending`` with ``schedulingReason: slot_taken``
(``shared.stores.bookings.claim_for_scheduling`` wrote it). Once its payment is refunded,
whoever learns it first (the refund's own answer, or the payment read again as
``refunded``) ends it in one transaction: ``cancelled``, ``schedulingReason:
slot_taken_refunded``. Every later arrival finds it so and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.core.errors import BookingNotFound
from shared.stores import bookings, db, slots

SLOT_TAKEN_REFUNDED = "slot_taken_refunded"
SLOT_TAKEN_REFUND_REFUSED = "slot_taken_refund_refused"
# A booking in one of these states paid for a time it cannot have.
_REFUSED = (bookings.SLOT_TAKEN, SLOT_TAKEN_REFUND_REFUSED)

SETTLED = "settled"
ALREADY = "already_settled"
NOT_SLOT_TAKEN = "not_slot_taken"


def get_booking(booking_id: str) -> dict[str, Any] | None:
    """The booking's fields, or None when there is no such booking."""
    ref = db.firestore_client().collection(bookings.BOOKINGS).document(booking_id)
    with db.firestore_errors("read the booking"):
        snapshot = ref.get(retry=db.firestore_read_retry(5.0), timeout=5.0)
    return (snapshot.to_dict() or {}) if snapshot.exists else None


def settle_slot_taken_refund(
    booking_id: str, *, payment_fields: Mapping[str, Any], message: str
) -> str:
    """End a slot-taken booking whose payment is refunded: ``settled``; ``already_settled``
    when an earlier arrival did; ``not_slot_taken`` (nothing written) for any other booking."""
    from google.cloud import firestore

    client = db.firestore_client()
    ref = client.collection(bookings.BOOKINGS).document(booking_id)

    def body(transaction: Any) -> str:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            raise BookingNotFound(f"booking {booking_id} does not exist")
        data = snapshot.to_dict() or {}
        if data.get("status") == bookings.CANCELLED:
            return (
                ALREADY if data.get("schedulingReason") == SLOT_TAKEN_REFUNDED else NOT_SLOT_TAKEN
            )
        if data.get("status") != bookings.PENDING or data.get("schedulingReason") not in _REFUSED:
            return NOT_SLOT_TAKEN
        transaction.update(
            ref,
            {
                **payment_fields,
                **slots.release_claim_of(transaction, data, booking_id),
                "status": bookings.CANCELLED,
                "cancellationReason": SLOT_TAKEN_REFUNDED,
                "cancelledAt": firestore.SERVER_TIMESTAMP,
                "eventDeleted": True,  # it never had one
                "schedulingState": bookings.DONE,
                "schedulingReason": SLOT_TAKEN_REFUNDED,
                "schedulingMessage": message,
                "schedulingUpdatedAt": firestore.SERVER_TIMESTAMP,
            },
        )
        return SETTLED

    with db.firestore_errors("settle the refunded booking"):
        return firestore.transactional(body)(client.transaction())


def record_refund_refused(booking_id: str, *, message: str) -> bool:
    """Leave a slot-taken booking failed, saying MercadoPago refused its refund."""
    from google.cloud import firestore

    client = db.firestore_client()
    ref = client.collection(bookings.BOOKINGS).document(booking_id)

    def body(transaction: Any) -> bool:
        snapshot = ref.get(transaction=transaction)
        data = (snapshot.to_dict() or {}) if snapshot.exists else {}
        if data.get("status") != bookings.PENDING or data.get("schedulingReason") not in _REFUSED:
            return False
        transaction.update(
            ref,
            {
                "schedulingState": bookings.FAILED,
                "schedulingReason": SLOT_TAKEN_REFUND_REFUSED,
                "schedulingMessage": message,
                "schedulingUpdatedAt": firestore.SERVER_TIMESTAMP,
            },
        )
        return True

    with db.firestore_errors("record the refused refund"):
        return firestore.transactional(body)(client.transaction())
