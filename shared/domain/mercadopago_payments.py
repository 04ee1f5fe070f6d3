"""A MercadoPago payment as classcal trusts it: read from MercadoPago's API, never taken
from a notification or a message, and the booking it pays for.

The booking is the one whose document id is the payment's ``external_reference`` (the
platform sets it to the booking id when it creates the preference); a payment without
one pays for the booking whose ``preferenceId`` is its merchant order's ``preference_id``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shared.core import ids
from shared.core.errors import BookingNotFound, InvalidBooking
from shared.core.logs import get_logger
from shared.mercadopago import api
from shared.stores import bookings, payment_refunds

log = get_logger(__name__)

SOURCE = "mercadopago"


@dataclass(frozen=True)
class Payment:
    """What MercadoPago's API says of one payment, checked."""

    payment_id: str
    status: str
    amount: int | float | None
    currency: str | None
    external_reference: str | None
    order_id: str | None

    def booking_fields(self) -> dict[str, Any]:
        """The payment as booking fields; ``paymentSource`` says it was read from MercadoPago."""
        fields: dict[str, Any] = {
            "paymentStatus": self.status,
            "paymentId": self.payment_id,
            "paymentSource": SOURCE,
        }
        if self.amount is not None:
            fields["paymentAmount"] = self.amount
        if self.currency is not None:
            fields["paymentCurrency"] = self.currency
        return fields


def _short_text(value: Any, limit: int) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        return None
    return value if value.isprintable() else None


def read_payment(payment_id: str) -> Payment:
    """``GET /v1/payments/{id}``, checked; MercadoPago's errors as ``shared.mercadopago.api``'s."""
    body = api.get_payment(payment_id)
    status = _short_text(body.get("status"), 64)
    if status is None:
        raise api.MercadoPagoUnavailable(f"MercadoPago's payment {payment_id} has no status")
    amount = body.get("transaction_amount")
    usable = isinstance(amount, int | float) and not isinstance(amount, bool)
    if not usable or not math.isfinite(amount) or amount < 0:
        amount = None
    order = body.get("order") if isinstance(body.get("order"), dict) else {}
    return Payment(
        payment_id=_short_text(body.get("id"), 128) or payment_id,
        status=status,
        amount=amount,
        currency=_short_text(body.get("currency_id"), 8),
        external_reference=_short_text(body.get("external_reference"), 1500),
        order_id=_short_text(order.get("id"), 64),
    )


@dataclass(frozen=True)
class PaidBooking:
    booking_id: str
    preference_id: str | None


def _order_preference(payment: Payment) -> str | None:
    if payment.order_id is None:
        return None
    try:
        order = api.get_merchant_order(payment.order_id)
    except api.MercadoPagoNotFound:
        return None
    return _short_text(order.get("preference_id"), 256)


def booking_of(payment: Payment) -> PaidBooking | None:
    """The booking the payment pays for, or None when it is no booking of classcal's."""
    reference = payment.external_reference
    if reference is not None and ids.is_document_id(reference):
        data = payment_refunds.get_booking(reference)
        if data is not None:
            preference = data.get("preferenceId")
            if not isinstance(preference, str) or not preference:
                preference = _order_preference(payment)
            return PaidBooking(reference, preference)
    preference = _order_preference(payment)
    if preference is None or "/" in preference:
        return None
    try:
        return PaidBooking(bookings.find_booking_id(preference), preference)
    except BookingNotFound:
        return None


def pays_for(payment: Payment, booking_id: str, preference_id: str) -> bool:
    """Whether the payment is this booking's (so that its amount may become its price)."""
    if payment.external_reference is not None:
        return payment.external_reference == booking_id
    return _order_preference(payment) == preference_id


def verified_for_booking(preference_id: str, payment_id: str) -> tuple[str, Payment]:
    """The booking paid by ``preference_id`` and the payment read again from MercadoPago.

    InvalidBooking when the payment is not this booking's: a message naming another
    payment (a cheaper one, someone else's) schedules nothing and sets no price.
    """
    booking_id = bookings.find_booking_id(preference_id)
    payment = read_payment(payment_id)
    if not pays_for(payment, booking_id, preference_id):
        raise InvalidBooking(
            f"MercadoPago's payment {payment.payment_id} does not pay for booking {booking_id}",
            code="payment_not_this_bookings",
        )
    return booking_id, payment
