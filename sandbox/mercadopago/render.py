"""Payments, merchant orders and refunds as MercadoPago writes them (the fields classcal
reads, and the common ones around them). Ids are JSON numbers, as MercadoPago's are."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.mercadopago.models import Delivery, MerchantOrder, Payment, Refund


def _time(moment: datetime | None) -> str | None:
    # MercadoPago writes local times with milliseconds and an offset.
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds")


def refund(item: Refund) -> dict[str, Any]:
    return {
        "id": item.id,
        "payment_id": item.payment_id,
        "amount": item.amount,
        "metadata": {},
        "source": {"id": "44444", "name": "classcal sandbox", "type": "collector"},
        "date_created": _time(item.created),
        "unique_sequence_number": None,
        "refund_mode": "standard",
        "adjustment_amount": 0,
        "status": item.status,
        "reason": None,
    }


def payment(item: Payment) -> dict[str, Any]:
    return {
        "id": item.id,
        "date_created": _time(item.created),
        "date_approved": _time(item.approved),
        "date_last_updated": _time(item.updated),
        "money_release_date": None,
        "operation_type": "regular_payment",
        "payment_method_id": "visa",
        "payment_type_id": "credit_card",
        "status": item.status,
        "status_detail": item.status_detail,
        "currency_id": item.currency,
        "description": "Clase de Inglés",
        "live_mode": False,
        "collector_id": 44444,
        "payer": {"id": "55555", "email": "test_user_55555@testuser.com", "type": None},
        "metadata": dict(item.metadata),
        "order": {"id": item.order_id, "type": "mercadopago"},
        "external_reference": item.external_reference,
        "transaction_amount": item.amount,
        "transaction_amount_refunded": item.refunded_amount,
        "installments": 1,
        "refunds": [refund(r) for r in item.refunds],
        "captured": True,
        "binary_mode": False,
    }


def order(item: MerchantOrder, payments: list[Payment]) -> dict[str, Any]:
    paid = sum(p.amount for p in payments if p.status == "approved")
    total = sum(p.amount for p in payments)
    return {
        "id": item.id,
        "status": "closed" if payments and paid >= total else "opened",
        "external_reference": item.external_reference,
        "preference_id": item.preference_id,
        "payments": [
            {
                "id": p.id,
                "transaction_amount": p.amount,
                "total_paid_amount": p.amount,
                "currency_id": p.currency,
                "status": p.status,
                "status_detail": p.status_detail,
                "date_created": _time(p.created),
                "date_approved": _time(p.approved),
            }
            for p in payments
        ],
        "site_id": "MLA",
        "order_status": "paid" if payments and paid >= total else "payment_required",
        "total_amount": total,
        "paid_amount": paid,
        "date_created": _time(item.created),
        "notification_url": None,
    }


def delivery(item: Delivery) -> dict[str, Any]:
    return {
        "url": item.url,
        "payment_id": item.payment_id,
        "action": item.action,
        "outcome": item.outcome,
        "status": item.status,
    }
