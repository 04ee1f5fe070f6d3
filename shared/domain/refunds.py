"""The automatic refund of a paid booking whose time was taken, exactly once.

When the slot guard refuses a booking paid through MercadoPago (``paymentSource:
mercadopago``, written only from a payment classcal read from MercadoPago) and
``AUTO_REFUND_ON_SLOT_TAKEN`` is true, the payment is refunded in full and the booking
ends ``cancelled`` with ``schedulingReason: slot_taken_refunded``.

Exactly once by construction: the refund's ``X-Idempotency-Key`` is derived from the
booking id, so a redelivery, a concurrent delivery or a retry after a crash between the
refund and the booking write asks MercadoPago for the same refund and gets the first one
back. The booking write is one transaction that only a slot-taken booking passes
(``shared.stores.payment_refunds``), so it happens once too, whoever gets there first,
including a delivery that reads the payment again and finds it ``refunded``.

A refund MercadoPago refuses (too old, already refunded, ...) leaves the booking
``failed`` with ``schedulingReason: slot_taken_refund_refused`` and MercadoPago's
reason, for a person to act on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from shared.core.config import get_config
from shared.core.logs import get_logger
from shared.domain import mercadopago_payments
from shared.mercadopago import api
from shared.stores import payment_refunds

log = get_logger(__name__)

REFUNDED = payment_refunds.SLOT_TAKEN_REFUNDED
REFUSED = payment_refunds.SLOT_TAKEN_REFUND_REFUSED


def idempotency_key(booking_id: str) -> str:
    """The one key of the one refund a booking can get (booking ids may be long)."""
    return "classcal-slot-taken-" + hashlib.sha256(booking_id.encode()).hexdigest()[:40]


def refundable(data: Mapping[str, Any]) -> str | None:
    """The MercadoPago payment id to refund for this slot-taken booking, or None."""
    config = get_config()
    if not config.auto_refund_on_slot_taken or not config.mercadopago:
        return None
    if data.get("paymentSource") != mercadopago_payments.SOURCE:
        return None
    payment_id = data.get("paymentId")
    return payment_id if isinstance(payment_id, str) and payment_id else None


def refunded_message(refund_id: str | None) -> str:
    which = f" (MercadoPago refund {refund_id})" if refund_id else ""
    return (
        "The class's time was taken by another class before this payment arrived; the "
        f"payment was refunded in full automatically{which}."
    )


def settle(booking_id: str, payment_fields: Mapping[str, Any], refund_id: str | None) -> str:
    return payment_refunds.settle_slot_taken_refund(
        booking_id, payment_fields=payment_fields, message=refunded_message(refund_id)
    )


def refund_slot_taken(booking_id: str, payment_id: str, context: Mapping[str, Any]) -> str:
    """Refund the payment and end the booking; ``slot_taken_refunded`` or, when MercadoPago
    refuses, ``slot_taken_refund_refused``. MercadoPago unavailable or misconfigured
    raises (the message is delivered again, and asks for the same refund)."""
    try:
        refund = api.refund_payment(payment_id, idempotency_key(booking_id))
    except (api.MercadoPagoRefused, api.MercadoPagoNotFound) as error:
        message = (
            "The class's time was taken by another class before this payment arrived, and "
            f"MercadoPago refused the automatic refund: {error.message}. Refund the student "
            "or move the class by hand."
        )
        payment_refunds.record_refund_refused(booking_id, message=message)
        log.error(
            f"slot taken and the refund was refused: {error.message}",
            extra={**context, "outcome": "failed", "reason": REFUSED, "payment_id": payment_id},
        )
        return REFUSED
    refund_id = refund.get("id")
    refund_text = str(refund_id) if isinstance(refund_id, int | str) else None
    fields = {"paymentStatus": "refunded", **({"refundId": refund_text} if refund_text else {})}
    result = settle(booking_id, fields, refund_text)
    log.warning(
        "slot taken: the payment was refunded in full automatically",
        extra={
            **context,
            "outcome": "cancelled",
            "reason": REFUNDED,
            "payment_id": payment_id,
            "refund_id": refund_text,
            "settled": result,
        },
    )
    return REFUNDED
