"""The sandbox's MercadoPago: its backend directly, and its routes over HTTP with the
client classcal uses (``shared.mercadopago.api``) and plain ``requests``."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests

from sandbox.core import timeutil
from sandbox.mercadopago.backend import MercadoPagoBackend
from sandbox.mercadopago.client import MercadoPagoControl
from sandbox.mercadopago.errors import MercadoPagoError
from shared.core.config import reset_config
from shared.core.errors import ConfigError
from shared.mercadopago import api, signatures

TOKEN = "APP_USR-test"
SECRET = "test-webhook-secret"


@pytest.fixture
def backend() -> MercadoPagoBackend:
    backend = MercadoPagoBackend()
    backend.configure(access_token=TOKEN, webhook_secret=SECRET)
    return backend


def approved(backend: MercadoPagoBackend, **fields: Any) -> Any:
    values = {
        "amount": 100.0,
        "currency": "ARS",
        "status": "approved",
        "external_reference": "b-1",
        "preference_id": "p-1",
        **fields,
    }
    return backend.create_payment(**values)


# --- the backend, without HTTP ----------------------------------------------------------


def test_a_repeated_idempotency_key_gets_the_first_refund_back(
    backend: MercadoPagoBackend,
) -> None:
    payment = approved(backend)

    first, created = backend.refund(str(payment.id), "key-1", None)
    again, created_again = backend.refund(str(payment.id), "key-1", None)

    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert backend.get_payment(payment.id).status == "refunded"
    assert len(backend.get_payment(payment.id).refunds) == 1


def test_a_second_full_refund_is_refused(backend: MercadoPagoBackend) -> None:
    payment = approved(backend)
    backend.refund(str(payment.id), "key-1", None)

    with pytest.raises(MercadoPagoError) as refused:
        backend.refund(str(payment.id), "key-2", None)

    assert refused.value.status == 400
    assert refused.value.message == "Payment already refunded"


def test_concurrent_refunds_with_one_key_make_one_refund(backend: MercadoPagoBackend) -> None:
    payment = approved(backend)
    barrier = threading.Barrier(8)
    ids: list[int] = []

    def one() -> None:
        barrier.wait()
        ids.append(backend.refund(str(payment.id), "same", None)[0].id)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(ids)) == 1
    assert len(backend.get_payment(payment.id).refunds) == 1


def test_only_approved_and_recent_payments_are_refunded(backend: MercadoPagoBackend) -> None:
    pending = approved(backend, status="pending")
    old = approved(backend, created=timeutil.now() - timedelta(days=181))

    with pytest.raises(MercadoPagoError, match="status"):
        backend.refund(str(pending.id), None, None)
    with pytest.raises(MercadoPagoError, match="too old"):
        backend.refund(str(old.id), None, None)


def test_a_partial_refund_keeps_the_payment_approved(backend: MercadoPagoBackend) -> None:
    payment = approved(backend)

    backend.refund(str(payment.id), None, 40.0)

    after = backend.get_payment(payment.id)
    assert (after.status, after.status_detail, after.refunded_amount) == (
        "approved",
        "partially_refunded",
        40.0,
    )
    with pytest.raises(MercadoPagoError, match="amount"):
        backend.refund(str(payment.id), None, 70.0)


def test_refunding_from_the_dashboard_refunds_what_is_left(backend: MercadoPagoBackend) -> None:
    payment = approved(backend)

    backend.set_status(payment.id, "refunded")

    assert backend.get_payment(payment.id).refunded_amount == 100.0


def test_the_notification_is_signed_as_mercadopago_documents(backend: MercadoPagoBackend) -> None:
    payment = approved(backend)

    request = backend.notification(str(payment.id), url="http://127.0.0.1:9/hook", ts="1704908010")

    assert request["url"] == f"http://127.0.0.1:9/hook?data.id={payment.id}&type=payment"
    assert request["body"]["data"] == {"id": str(payment.id)}
    request_id = request["headers"]["x-request-id"]
    manifest = f"id:{payment.id};request-id:{request_id};ts:1704908010;"
    digest = hmac.new(SECRET.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    assert request["headers"]["x-signature"] == f"ts=1704908010,v1={digest}"
    # ... and classcal's check agrees.
    signatures.verify(
        request["headers"]["x-signature"],
        request_id=request_id,
        data_id=str(payment.id),
        secret=SECRET,
        tolerance_seconds=60,
        now=1704908010,
    )


def test_a_bearer_token_the_application_does_not_hold_is_refused(
    backend: MercadoPagoBackend,
) -> None:
    with pytest.raises(MercadoPagoError) as missing:
        backend.check_token(None)
    with pytest.raises(MercadoPagoError) as wrong:
        backend.check_token("Bearer nope")
    backend.check_token(f"Bearer {TOKEN}")

    assert (missing.value.status, wrong.value.status) == (401, 401)
    assert wrong.value.message == "invalid access token"


# --- over HTTP ----------------------------------------------------------------------------


@pytest.fixture
def mp(sandbox: Any, env: pytest.MonkeyPatch) -> MercadoPagoControl:
    control = MercadoPagoControl(sandbox.url)
    control.configure(access_token=TOKEN, webhook_secret=SECRET)
    env.setenv("MERCADOPAGO_API_URL", sandbox.url)
    env.setenv("MERCADOPAGO_ACCESS_TOKEN", TOKEN)
    reset_config()
    return control


def test_classcals_client_reads_payments_orders_and_refunds(mp: MercadoPagoControl) -> None:
    payment = mp.create_payment(amount=16500, external_reference="b-9", preference_id="p-9")

    read = api.get_payment(payment["id"])
    order = api.get_merchant_order(read["order"]["id"])
    refund = api.refund_payment(payment["id"], "k-1")
    again = api.refund_payment(payment["id"], "k-1")

    assert (read["status"], read["transaction_amount"], read["currency_id"]) == (
        "approved",
        16500,
        "ARS",
    )
    assert read["external_reference"] == "b-9"
    assert order["preference_id"] == "p-9"
    assert [p["id"] for p in order["payments"]] == [payment["id"]]
    assert refund["id"] == again["id"]
    assert refund["amount"] == 16500
    assert api.get_payment(payment["id"])["status"] == "refunded"
    with pytest.raises(api.MercadoPagoRefused, match="already refunded"):
        api.refund_payment(payment["id"], "k-2")
    with pytest.raises(api.MercadoPagoNotFound):
        api.get_payment("123")


def test_a_wrong_token_is_mercadopagos_401_and_classcals_config_error(
    mp: MercadoPagoControl, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    payment = mp.create_payment()

    answer = requests.get(
        f"{sandbox.url}/v1/payments/{payment['id']}",
        headers={"Authorization": "Bearer wrong"},
        timeout=10,
    )
    env.setenv("MERCADOPAGO_ACCESS_TOKEN", "wrong")
    reset_config()

    assert answer.status_code == 401
    body = answer.json()
    assert body["error"] == "unauthorized"
    assert body["status"] == 401
    assert body["message"] == "invalid access token"
    assert body["cause"][0]["description"] == "invalid access token"
    with pytest.raises(ConfigError, match="MERCADOPAGO_ACCESS_TOKEN") as refused:
        api.get_payment(payment["id"])
    assert "wrong" not in refused.value.message


def test_faults_and_stats_cover_mercadopagos_paths(mp: MercadoPagoControl, sandbox: Any) -> None:
    payment = mp.create_payment()
    sandbox.fault("GET", r"^/v1/payments/", 503, count=1)

    with pytest.raises(api.MercadoPagoUnavailable):
        api.get_payment(payment["id"])
    assert api.get_payment(payment["id"])["id"] == payment["id"]

    stats = sandbox.stats()
    assert stats["requests"]["mercadopago.payments.get"] == 2
    assert stats["faults_fired"] == 1
    unknown = requests.get(f"{sandbox.url}/merchant_orders/x/y", timeout=10)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback HTTP server that records what is posted to it."""
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": json.loads(self.rfile.read(length)),
                }
            )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def test_notifications_are_delivered_signed_and_on_every_change(
    mp: MercadoPagoControl, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    payment = mp.create_payment()

    sent = mp.notify(payment["id"], url)
    mp.configure(notification_url=url)
    mp.set_status(payment["id"], "charged_back")

    assert sent["delivery"]["outcome"] == "delivered"
    deadline = timeutil.now() + timedelta(seconds=10)
    while len(received) < 2 and timeutil.now() < deadline:
        threading.Event().wait(0.05)
    assert [r["path"] for r in received] == [f"/hook?data.id={payment['id']}&type=payment"] * 2
    assert received[1]["body"]["action"] == "payment.updated"
    assert "ts=" in received[0]["headers"]["x-signature"]
    elsewhere = mp.notify(payment["id"], "http://example.com/hook")
    assert elsewhere["delivery"]["outcome"] == "undeliverable"
