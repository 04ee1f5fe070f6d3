"""What a verified MercadoPago notification does: read the payment from MercadoPago and
publish it to ``payments`` as the message create_event reads.

Only MercadoPago's answer is used (never the notification's body): ``preferenceId`` (of
the booking the payment pays for), ``status``, ``paymentId``, ``amount``
(``transaction_amount``) and ``currency`` (``currency_id``). Other notification types,
unknown payments and payments of no booking are acknowledged and logged.
"""

from __future__ import annotations

from typing import Any

from shared.core.config import get_config
from shared.core.encoding import json_bytes
from shared.core.logs import get_logger
from shared.domain import mercadopago_payments
from shared.google import pubsub
from shared.mercadopago import api

log = get_logger(__name__)

PUBLISHED = "published"
IGNORED = "ignored"
UNKNOWN_PAYMENT = "unknown_payment"
NO_BOOKING = "no_booking"


def payments_message(payment: mercadopago_payments.Payment, preference_id: str) -> dict[str, Any]:
    """The payments message (docs/contracts/payments-message.md) for a payment."""
    message: dict[str, Any] = {
        "preferenceId": preference_id,
        "status": payment.status,
        "paymentId": payment.payment_id,
    }
    if payment.amount is not None:
        message["amount"] = payment.amount
    if payment.currency is not None:
        message["currency"] = payment.currency
    return message


def handle(kind: str | None, payment_id: str | None) -> dict[str, Any]:
    """Act on a notification whose signature was checked; the closing log line's fields."""
    if kind != "payment" or payment_id is None:
        return {"outcome": IGNORED, "notification_type": kind}
    try:
        payment = mercadopago_payments.read_payment(payment_id)
    except api.MercadoPagoNotFound:
        return {"outcome": UNKNOWN_PAYMENT, "payment_id": payment_id}
    paid = mercadopago_payments.booking_of(payment)
    fields = {"payment_id": payment.payment_id, "payment_status": payment.status}
    if paid is None or paid.preference_id is None:
        return {
            **fields,
            "outcome": NO_BOOKING,
            "booking_id": paid.booking_id if paid else None,
        }
    message = payments_message(payment, paid.preference_id)
    message_id = pubsub.publish(get_config().payments_topic, json_bytes(message))
    return {
        **fields,
        "outcome": PUBLISHED,
        "booking_id": paid.booking_id,
        "preference_id": paid.preference_id,
        "message_id": message_id,
    }
