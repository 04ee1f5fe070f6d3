"""MercadoPago's HTTP side, and its control side under /_sandbox/mercadopago/."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from sandbox.core import timeutil
from sandbox.core.routing import ApiRequest, Reply
from sandbox.mercadopago import render
from sandbox.mercadopago.backend import MercadoPagoBackend
from sandbox.mercadopago.errors import bad_request


def _body(req: ApiRequest) -> dict[str, Any]:
    return req.json_body(lambda message: bad_request(message))


def _authorized(backend: MercadoPagoBackend, req: ApiRequest) -> None:
    backend.check_token(req.headers.get("Authorization"))


def get_payment(backend: MercadoPagoBackend, req: ApiRequest) -> Reply:
    _authorized(backend, req)
    return Reply(render.payment(backend.get_payment(req.params["payment"])))


def get_order(backend: MercadoPagoBackend, req: ApiRequest) -> Reply:
    _authorized(backend, req)
    return Reply(render.order(*backend.get_order(req.params["order"])))


def create_refund(backend: MercadoPagoBackend, req: ApiRequest) -> Reply:
    _authorized(backend, req)
    amount = _body(req).get("amount")
    if amount is not None and (
        isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount)
    ):
        raise bad_request("amount must be a number", 4020)
    refund, _created = backend.refund(
        req.params["payment"], req.headers.get("X-Idempotency-Key"), amount
    )
    # A replayed idempotency key answers what the first request answered.
    return Reply(render.refund(refund), status=201)


# --- control ---


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise bad_request(f"{name!r} must be a non-empty string")
    return value


def configure(backend: MercadoPagoBackend, req: ApiRequest) -> Reply:
    body = _body(req)
    url = body.get("notification_url")
    if url is not None and not isinstance(url, str):
        raise bad_request("'notification_url' must be a string ('' to stop notifying)")
    return Reply(backend.configure(_text(body, "access_token"), _text(body, "webhook_secret"), url))


def create_payment(backend: MercadoPagoBackend, req: ApiRequest) -> Reply:
    body = _body(req)
    amount = body.get("amount", 15000)
    if isinstance(amount, bool) or not isinstance(amount, int | float) or amount <= 0:
        raise bad_request("'amount' must be a positive number")
    days_ago = body.get("days_ago", 0)
    if not isinstance(days_ago, int | float) or days_ago < 0:
        raise bad_request("'days_ago' must be a number of days, not negative")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise bad_request("'metadata' must be an object")
    payment = backend.create_payment(
        amount=amount,
        currency=_text(body, "currency") or "ARS",
        status=_text(body, "status") or "approved",
        external_reference=_text(body, "external_reference"),
        preference_id=_text(body, "preference_id"),
        created=timeutil.now() - timedelta(days=days_ago) if days_ago else None,
        metadata=metadata,
    )
    return Reply(render.payment(payment), status=201)


def set_status(backend: MercadoPagoBackend, req: ApiRequest) -> Reply:
    body = _body(req)
    status = _text(body, "status", required=True)
    assert status is not None
    payment = backend.set_status(req.params["payment"], status, _text(body, "status_detail"))
    return Reply(render.payment(payment))


def read_payment(backend: MercadoPagoBackend, req: ApiRequest) -> Reply:
    """The payment without a token: what the dashboard shows."""
    return Reply(render.payment(backend.get_payment(req.params["payment"])))


def notify(backend: MercadoPagoBackend, req: ApiRequest) -> Reply:
    """Build the signed notification for a payment, and send it unless `deliver` is false
    (tests then tamper with it and send it themselves)."""
    body = _body(req)
    payment_id = body.get("payment_id")
    if isinstance(payment_id, int) and not isinstance(payment_id, bool):
        payment_id = str(payment_id)
    if not isinstance(payment_id, str) or not payment_id:
        raise bad_request("'payment_id' is required")
    url = _text(body, "url", required=True)
    assert url is not None
    action = _text(body, "action") or "payment.updated"
    request = backend.notification(
        payment_id,
        url=url,
        action=action,
        kind=_text(body, "type") or "payment",
        ts=_text(body, "ts"),
        secret=_text(body, "secret"),
    )
    answer: dict[str, Any] = {"request": request}
    if body.get("deliver", True):
        answer["delivery"] = render.delivery(backend.deliver(request, payment_id, action))
    return Reply(answer)


def deliveries(backend: MercadoPagoBackend, req: ApiRequest) -> Reply:
    return Reply({"deliveries": [render.delivery(d) for d in backend.list_deliveries()]})
