"""Section ``payment_webhook``: latency per MercadoPago notification, as a ratio to bare.

A real functions-framework server runs payment_webhook against the lab's Firestore and
Pub/Sub emulators and the sandbox's MercadoPago. One booking and one MercadoPago payment
are written per notification; each signed notification is posted to the server,
interleaved with the bare minimum the job needs, made directly in this process with the
same libraries (one payment read from MercadoPago, one Firestore read of the booking, one
publish to ``payments``), so machine noise hits both alike. The first notification (the
instance's cold imports and clients) is reported apart. A notification with a bad
signature is timed too: it must cost no MercadoPago call.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks import common
from localstack.constants import PAYMENTS, PROJECT

TOKEN = "APP_USR-bench"  # the sandbox's application, not a real token
SECRET = "bench-webhook-secret"  # the sandbox's, not a real secret
READS = "mercadopago.payments.get"


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def run(lab: common.Lab, notifications: int) -> dict[str, Any]:
    import requests
    from google.cloud import pubsub_v1

    from sandbox.mercadopago.client import MercadoPagoControl

    lab.reset()
    mercadopago = {
        "MERCADOPAGO_API_URL": lab.sandbox.url,
        "MERCADOPAGO_ACCESS_TOKEN": TOKEN,
        "MERCADOPAGO_WEBHOOK_SECRET": SECRET,
    }
    env = lab.env(**{**mercadopago, "LOG_LEVEL": "WARNING"})
    lab.point_here(**mercadopago)
    lab.pubsub_client.create_topic(PAYMENTS)
    mp = MercadoPagoControl(lab.sandbox.url)
    mp.configure(access_token=TOKEN, webhook_secret=SECRET)
    server = lab.start_function("payment_webhook", env)
    db = lab.db()
    publisher = pubsub_v1.PublisherClient(
        batch_settings=pubsub_v1.types.BatchSettings(max_messages=1)
    )
    topic = publisher.topic_path(PROJECT, PAYMENTS)
    session = requests.Session()
    bare_session = requests.Session()

    def prepare(index: int) -> dict[str, Any]:
        booking_id = f"bench-{uuid.uuid4().hex[:12]}"
        start = datetime.now(UTC) + timedelta(days=3, hours=index)
        db.document(f"virtualClasses/{booking_id}").set(
            {"preferenceId": f"p-{booking_id}", "status": "pending", "startTime": start}
        )
        payment = mp.create_payment(
            amount=15000, external_reference=booking_id, preference_id=f"p-{booking_id}"
        )
        return mp.notify(payment["id"], f"{server.url}/", deliver=False)["request"]

    def post(request: dict[str, Any], headers: dict[str, str] | None = None) -> float:
        began = time.perf_counter()
        answer = session.post(
            request["url"],
            data=json.dumps(request["body"]),
            headers=headers or request["headers"],
            timeout=30,
        )
        spent = time.perf_counter() - began
        if answer.status_code != (401 if headers else 200):
            raise RuntimeError(f"payment_webhook answered {answer.status_code}: {answer.text}")
        return spent

    def bare(request: dict[str, Any]) -> float:
        payment_id = request["body"]["data"]["id"]
        began = time.perf_counter()
        payment = bare_session.get(
            f"{lab.sandbox.url}/v1/payments/{payment_id}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        ).json()
        booking = db.document(f"virtualClasses/{payment['external_reference']}").get()
        message = {"preferenceId": booking.get("preferenceId"), "status": payment["status"]}
        publisher.publish(topic, json.dumps(message).encode()).result(timeout=10)
        return time.perf_counter() - began

    try:
        cold = post(prepare(0))
        bare(prepare(0))  # the bare side's own first call, not counted
        webhook_times: list[float] = []
        bare_times: list[float] = []
        for index in range(1, notifications + 1):
            webhook_times.append(post(prepare(index)))
            bare_times.append(bare(prepare(index)))
        reads_before = lab.control.stats()["requests"].get(READS, 0)
        request = prepare(0)
        refused = post(request, {**request["headers"], "x-signature": "ts=1,v1=00"})
        reads_after = lab.control.stats()["requests"].get(READS, 0)
    finally:
        server.stop()
    median_webhook = statistics.median(webhook_times)
    median_bare = statistics.median(bare_times)
    return {
        "notifications": notifications,
        "first_notification_ms": _ms(cold),
        "webhook_median_ms": _ms(median_webhook),
        "webhook_p95_ms": _ms(sorted(webhook_times)[int(len(webhook_times) * 0.95) - 1]),
        "bare_median_ms": _ms(median_bare),
        "ratio": round(median_webhook / median_bare, 2),
        "bad_signature_ms": _ms(refused),
        "mercadopago_reads_for_bad_signature": reads_after - reads_before,
    }


def problems(figures: dict[str, Any]) -> list[str]:
    reads = figures["mercadopago_reads_for_bad_signature"]
    if reads:
        return [f"payment_webhook: a bad signature cost {reads} MercadoPago reads, must be 0"]
    return []
