"""The MercadoPago backend: payments, their merchant orders and refunds, the accepted
access tokens and the webhook secret. Everything under `lock`; methods return copies.

Refunds follow MercadoPago's rules as far as classcal meets them: a repeated
`X-Idempotency-Key` answers the refund it made the first time (never a second one), a
fully refunded payment refuses another refund, only an approved payment can be refunded,
and only within `REFUND_WINDOW` of its creation. A full refund makes the payment
`refunded`.
"""

from __future__ import annotations

import copy
import itertools
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta
from typing import Any

from sandbox.core import timeutil
from sandbox.mercadopago import signing
from sandbox.mercadopago.errors import MercadoPagoError, bad_request, not_found, unauthorized
from sandbox.mercadopago.models import Delivery, MerchantOrder, Payment, Refund

STATUSES = (
    "pending",
    "approved",
    "authorized",
    "in_process",
    "in_mediation",
    "rejected",
    "cancelled",
    "refunded",
    "charged_back",
)
STATUS_DETAILS = {
    "pending": "pending_waiting_payment",
    "approved": "accredited",
    "authorized": "pending_capture",
    "in_process": "pending_contingency",
    "in_mediation": "in_mediation",
    "rejected": "cc_rejected_other_reason",
    "cancelled": "by_collector",
    "refunded": "refunded",
    "charged_back": "settled",
}
REFUND_WINDOW = timedelta(days=180)
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
# The sandbox never routes its notifications through a proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _is_loopback(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("http", "https") and (parts.hostname or "") in _LOOPBACK


class MercadoPagoBackend:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.payments: dict[int, Payment] = {}
            self.orders: dict[int, MerchantOrder] = {}
            self.idempotent: dict[tuple[int, str], Refund] = {}
            self.access_tokens: set[str] = set()
            self.webhook_secret: str | None = None
            self.notification_url: str | None = None
            self.deliveries: list[Delivery] = []
            self._payment_ids = itertools.count(1_300_000_001)
            self._order_ids = itertools.count(24_000_000_001)
            self._refund_ids = itertools.count(1_500_000_001)
            self._notification_ids = itertools.count(120_000_000_001)

    # --- configuration (control) ---

    def configure(
        self,
        access_token: str | None = None,
        webhook_secret: str | None = None,
        notification_url: str | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            if access_token:
                self.access_tokens.add(access_token)
            if webhook_secret:
                self.webhook_secret = webhook_secret
            if notification_url is not None:
                self.notification_url = notification_url or None
            return {
                "access_tokens": len(self.access_tokens),
                "webhook_secret": self.webhook_secret is not None,
                "notification_url": self.notification_url,
            }

    def check_token(self, authorization: str | None) -> None:
        """A Bearer token this application accepts, else MercadoPago's 401."""
        if not authorization:
            raise unauthorized("Must provide your access_token to proceed")
        scheme, _, token = authorization.partition(" ")
        with self.lock:
            if scheme.lower() != "bearer" or token.strip() not in self.access_tokens:
                raise unauthorized()

    # --- payments ---

    def create_payment(
        self,
        *,
        amount: float,
        currency: str,
        status: str,
        external_reference: str | None,
        preference_id: str | None,
        created: datetime | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Payment:
        if status not in STATUSES:
            raise bad_request(f"unknown status {status!r}")
        now = timeutil.now()
        with self.lock:
            order_id = next(self._order_ids)
            payment = Payment(
                id=next(self._payment_ids),
                status=status,
                status_detail=STATUS_DETAILS[status],
                amount=amount,
                currency=currency,
                external_reference=external_reference,
                order_id=order_id,
                created=created or now,
                updated=now,
                approved=now if status == "approved" else None,
                metadata=dict(metadata or {}),
            )
            self.payments[payment.id] = payment
            self.orders[order_id] = MerchantOrder(
                order_id, preference_id, external_reference, [payment.id], now
            )
            snapshot = copy.deepcopy(payment)
        self._notify_configured(snapshot.id, "payment.created")
        return snapshot

    def _payment(self, payment_id: str | int) -> Payment:
        try:
            key = int(payment_id)
        except (TypeError, ValueError):
            raise bad_request("Invalid payment_id", 4017) from None
        payment = self.payments.get(key)
        if payment is None:
            raise not_found("Payment")
        return payment

    def get_payment(self, payment_id: str | int) -> Payment:
        with self.lock:
            return copy.deepcopy(self._payment(payment_id))

    def get_order(self, order_id: str) -> tuple[MerchantOrder, list[Payment]]:
        with self.lock:
            order = self.orders.get(int(order_id)) if order_id.isdigit() else None
            if order is None:
                raise not_found("Merchant Order")
            payments = [copy.deepcopy(self.payments[p]) for p in order.payment_ids]
            return copy.deepcopy(order), payments

    def set_status(self, payment_id: str | int, status: str, detail: str | None = None) -> Payment:
        """What happens at MercadoPago without classcal: approval, a chargeback, a refund
        made from the dashboard (which refunds what is left)."""
        if status not in STATUSES:
            raise bad_request(f"unknown status {status!r}")
        with self.lock:
            payment = self._payment(payment_id)
            if status == "refunded" and payment.refunded_amount < payment.amount:
                payment.refunds.append(
                    self._new_refund(payment, payment.amount - payment.refunded_amount)
                )
            payment.status = status
            payment.status_detail = detail or STATUS_DETAILS[status]
            payment.updated = timeutil.now()
            if status == "approved" and payment.approved is None:
                payment.approved = payment.updated
            snapshot = copy.deepcopy(payment)
        self._notify_configured(snapshot.id, "payment.updated")
        return snapshot

    def _new_refund(self, payment: Payment, amount: float) -> Refund:
        return Refund(next(self._refund_ids), payment.id, amount, timeutil.now())

    # --- refunds ---

    def refund(
        self, payment_id: str, idempotency_key: str | None, amount: float | None
    ) -> tuple[Refund, bool]:
        """Refund the payment (in full when `amount` is None); returns (refund, created).
        A key seen before for this payment returns its refund again, created False."""
        with self.lock:
            payment = self._payment(payment_id)
            if idempotency_key:
                earlier = self.idempotent.get((payment.id, idempotency_key))
                if earlier is not None:
                    return copy.deepcopy(earlier), False
            left = round(payment.amount - payment.refunded_amount, 2)
            if payment.status == "refunded" or left <= 0:
                raise bad_request("Payment already refunded", 2085)
            if payment.status != "approved":
                raise bad_request(f"Invalid payment status to refund: {payment.status}", 2063)
            if timeutil.now() - payment.created > REFUND_WINDOW:
                raise bad_request("Payment too old to be refunded", 2081)
            wanted = left if amount is None else amount
            if wanted <= 0 or wanted > left:
                raise bad_request("Invalid refund amount", 2065)
            refund = self._new_refund(payment, wanted)
            payment.refunds.append(refund)
            if round(left - wanted, 2) <= 0:
                payment.status, payment.status_detail = "refunded", "refunded"
            else:
                payment.status_detail = "partially_refunded"
            payment.updated = timeutil.now()
            if idempotency_key:
                self.idempotent[(payment.id, idempotency_key)] = refund
            snapshot = copy.deepcopy(refund)
        self._notify_configured(snapshot.payment_id, "payment.updated")
        return snapshot, True

    # --- notifications ---

    def notification(
        self,
        payment_id: str,
        *,
        url: str,
        action: str = "payment.updated",
        kind: str = "payment",
        ts: str | None = None,
        secret: str | None = None,
    ) -> dict[str, Any]:
        """The request MercadoPago's Webhooks would send for the payment, signed."""
        with self.lock:
            key = secret or self.webhook_secret
            if key is None:
                raise MercadoPagoError(400, "no webhook secret is configured", "bad_request")
            notification_id = next(self._notification_ids)
        ts = ts or str(timeutil.to_millis(timeutil.now()))
        request_id = str(uuid.uuid4())
        separator = "&" if urllib.parse.urlsplit(url).query else "?"
        query = urllib.parse.urlencode({"data.id": payment_id, "type": kind})
        body = {
            "id": notification_id,
            "live_mode": False,
            "type": kind,
            "date_created": timeutil.format_timestamp(timeutil.now()),
            "user_id": 44444,
            "api_version": "v1",
            "action": action,
            "data": {"id": str(payment_id)},
        }
        return {
            "url": f"{url}{separator}{query}",
            "headers": {
                "Content-Type": "application/json",
                "x-request-id": request_id,
                "x-signature": signing.signature(key, str(payment_id), request_id, ts),
            },
            "body": body,
        }

    def deliver(self, request: dict[str, Any], payment_id: str, action: str) -> Delivery:
        """POST a notification built by `notification`; only to loopback addresses."""
        import json

        url = request["url"]
        if not _is_loopback(url):
            delivery = Delivery(url, payment_id, action, "undeliverable", None)
        else:
            data = json.dumps(request["body"]).encode()
            sent = urllib.request.Request(  # noqa: S310 - loopback only, checked above
                url, data=data, method="POST", headers=request["headers"]
            )
            try:
                with _OPENER.open(sent, timeout=30) as answer:
                    delivery = Delivery(url, payment_id, action, "delivered", answer.status)
            except urllib.error.HTTPError as error:
                error.close()
                delivery = Delivery(url, payment_id, action, "failed", error.code)
            except OSError:
                delivery = Delivery(url, payment_id, action, "failed", None)
        with self.lock:
            self.deliveries.append(delivery)
        return delivery

    def _notify_configured(self, payment_id: int, action: str) -> None:
        """With a notification URL configured, MercadoPago tells it of every change, a
        moment later and from elsewhere: a thread, so the caller's answer is not held."""
        with self.lock:
            url, secret = self.notification_url, self.webhook_secret
        if url is None or secret is None:
            return
        request = self.notification(str(payment_id), url=url, action=action)
        threading.Thread(
            target=self.deliver, args=(request, str(payment_id), action), daemon=True
        ).start()

    def list_deliveries(self) -> list[Delivery]:
        with self.lock:
            return [copy.copy(d) for d in self.deliveries]
