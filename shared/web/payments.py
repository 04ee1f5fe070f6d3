"""The payment message contract (topic ``payments``): a message becomes plain values.

A message's data is UTF-8 JSON::

    {"preferenceId": str, "status": str, "paymentId": str?, "amount": number?, "currency": str?}

Types are strict (a number is not a string, ``true`` is not a number), strings have
length limits, ``amount`` is finite and not negative, ``null`` means absent for the
optional fields, and unknown keys are ignored (the payments system may add some).

What each status does is ``shared.domain.payments``'s business.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.core.config import get_config
from shared.core.errors import InvalidMessage
from shared.core.logs import get_logger
from shared.domain import mercadopago_payments, payments
from shared.web.pubsub import PubSubMessage

log = get_logger(__name__)


MAX_PREFERENCE_ID = 256
MAX_STATUS = 64
MAX_PAYMENT_ID = 128
MAX_CURRENCY = 8
MAX_AMOUNT = 1e12


@dataclass(frozen=True)
class Payment:
    preference_id: str
    status: str
    payment_id: str | None = None
    amount: int | float | None = None
    currency: str | None = None

    def booking_fields(self) -> dict[str, Any]:
        """The payment as booking fields (``paymentStatus``, ``paymentId``, ...)."""
        fields: dict[str, Any] = {"paymentStatus": self.status}
        if self.payment_id is not None:
            fields["paymentId"] = self.payment_id
        if self.amount is not None:
            fields["paymentAmount"] = self.amount
        if self.currency is not None:
            fields["paymentCurrency"] = self.currency
        return fields


def _text(data: Mapping[str, Any], key: str, limit: int, *, required: bool) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise InvalidMessage(f"{key} is missing")
        return None
    if not isinstance(value, str):
        raise InvalidMessage(f"{key} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidMessage(f"{key} is empty")
    if len(value) > limit:
        raise InvalidMessage(f"{key} is {len(value)} characters, over {limit}")
    if not value.isprintable():
        raise InvalidMessage(f"{key} contains control characters")
    return value


def _amount(data: Mapping[str, Any]) -> int | float | None:
    value = data.get("amount")
    if value is None:
        return None
    # bool is an int in Python; JSON true is not an amount.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMessage(f"amount must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise InvalidMessage("amount must be a finite number")
    if value < 0:
        raise InvalidMessage("amount must not be negative")
    if value > MAX_AMOUNT:
        raise InvalidMessage(f"amount is over {MAX_AMOUNT:.0e}")
    return value


def parse_payment(data: Mapping[str, Any]) -> Payment:
    """The message's JSON object as a Payment, or InvalidMessage saying what is wrong."""
    preference_id = _text(data, "preferenceId", MAX_PREFERENCE_ID, required=True)
    status = _text(data, "status", MAX_STATUS, required=True)
    assert preference_id is not None
    assert status is not None
    if "/" in preference_id:
        raise InvalidMessage("preferenceId must not contain '/'")
    return Payment(
        preference_id=preference_id,
        status=status,
        payment_id=_text(data, "paymentId", MAX_PAYMENT_ID, required=False),
        amount=_amount(data),
        currency=_text(data, "currency", MAX_CURRENCY, required=False),
    )


def handle_payment_message(message: PubSubMessage) -> dict[str, Any]:
    """The create_event handler: parse the message, then act on the payment.

    With MercadoPago configured, a message naming a ``paymentId`` is only a hint: the
    payment is read again from MercadoPago, and its status, amount and currency are
    MercadoPago's. Any other message is unverified: it may schedule or cancel, but its
    ``amount`` never becomes the class's price.
    """
    payment = parse_payment(message.json_object())
    if get_config().mercadopago and payment.payment_id is not None:
        _booking_id, verified = mercadopago_payments.verified_for_booking(
            payment.preference_id, payment.payment_id
        )
        if verified.status != payment.status:
            log.info(
                f"the message says {payment.status!r}; MercadoPago says {verified.status!r}",
                extra={"preference_id": payment.preference_id, "payment_id": payment.payment_id},
            )
        return payments.act_on_payment(
            payment.preference_id,
            verified.status,
            payment_fields=verified.booking_fields(),
            amount=verified.amount,
        )
    return payments.act_on_payment(
        payment.preference_id,
        payment.status,
        payment_fields=payment.booking_fields(),
        amount=None,
    )
