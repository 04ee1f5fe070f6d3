"""What each payment status does to its booking, given as plain values.

``approved`` schedules the booking; ``refunded``, ``cancelled`` and ``charged_back``
cancel it (a ``refunded`` booking whose time was taken ends as ``slot_taken_refunded``:
``shared.domain.refunds``); any other status (``pending``, ``in_process``, ``rejected``,
...) is recorded on the booking, never over a scheduled or cancelled one, and acknowledged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.core.logs import get_logger
from shared.domain import cancellation, refunds, scheduling
from shared.stores import bookings, payment_refunds

log = get_logger(__name__)

APPROVED = "approved"
REFUNDED = "refunded"
CANCELLING_STATUSES = frozenset({"refunded", "cancelled", "charged_back"})


def act_on_payment(
    preference_id: str,
    status: str,
    *,
    payment_fields: Mapping[str, Any],
    amount: float | None = None,
) -> dict[str, Any]:
    """Do what the payment's status asks; return the fields of the closing log line."""
    booking_id = bookings.find_booking_id(preference_id)
    if status == APPROVED:
        outcome = scheduling.schedule_booking(booking_id, payment_fields, price=amount)
    elif (
        status == REFUNDED
        and (settled := refunds.settle(booking_id, payment_fields, None))
        != payment_refunds.NOT_SLOT_TAKEN
    ):
        # A booking whose time was taken, now refunded (by classcal or by hand): it ends
        # once; the refund's own notification then changes nothing.
        log.info(
            "the slot-taken booking's payment is refunded",
            extra={"booking_id": booking_id, "preference_id": preference_id, "settled": settled},
        )
        return {
            "booking_id": booking_id,
            "preference_id": preference_id,
            "payment_status": status,
            "outcome": refunds.REFUNDED
            if settled == payment_refunds.SETTLED
            else "already_cancelled",
        }
    elif status in CANCELLING_STATUSES:
        outcome = cancellation.cancel_booking(
            booking_id, reason=status, payment_fields=payment_fields
        )
    else:
        recorded = bookings.record_payment_status(booking_id, payment_fields)
        log.info(
            f"payment status {status!r} "
            + ("recorded" if recorded else "not recorded over a later state"),
            extra={
                "booking_id": booking_id,
                "preference_id": preference_id,
                "payment_status": status,
            },
        )
        return {
            "booking_id": booking_id,
            "preference_id": preference_id,
            "payment_status": status,
            "outcome": "payment_status_recorded" if recorded else "payment_status_ignored",
        }
    return {**outcome.log_fields(), "payment_status": status}
