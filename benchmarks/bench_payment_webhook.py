"""payment_webhook latency per notification, as a ratio to the bare minimum, in one run.

    python -m benchmarks.bench_payment_webhook [--notifications 100]

Starts the Firestore and Pub/Sub emulators, the sandbox (its MercadoPago) and a real
functions-framework server running payment_webhook, and writes one booking and one
MercadoPago payment per notification. Each signed notification is posted to the
server, interleaved with the bare minimum the job needs, made directly in this process
with the same libraries (one payment read from MercadoPago, one Firestore read of the
booking, one publish to ``payments``), so machine noise hits both alike. The first
notification (the instance's cold imports and clients) is reported apart. A notification
with a bad signature is timed too: it must cost no MercadoPago call.
Prints a table and writes ``benchmarks/results/payment_webhook.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from localstack import processes

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "payment_webhook.json"
TOKEN = "APP_USR-bench"  # the sandbox's application, not a real token
SECRET = "bench-webhook-secret"  # the sandbox's, not a real secret


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def run(notifications: int) -> dict[str, Any]:
    from google.cloud import firestore, pubsub_v1

    from sandbox.control import SandboxControl
    from sandbox.mercadopago.client import MercadoPagoControl

    logs = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    started = [
        processes.start_firestore(logs),
        processes.start_pubsub(logs),
        processes.start_sandbox(logs),
    ]
    fs, ps, sandbox = started
    try:
        env = {
            "GOOGLE_CLOUD_PROJECT": processes.PROJECT,
            "FIRESTORE_EMULATOR_HOST": fs.url,
            "PUBSUB_EMULATOR_HOST": ps.url,
            "MERCADOPAGO_API_URL": sandbox.url,
            "MERCADOPAGO_ACCESS_TOKEN": TOKEN,
            "MERCADOPAGO_WEBHOOK_SECRET": SECRET,
            "LOG_LEVEL": "WARNING",
        }
        os.environ.update(env)
        processes.PubSub(ps.url).create_topic("payments")
        mp = MercadoPagoControl(sandbox.url)
        mp.configure(access_token=TOKEN, webhook_secret=SECRET)
        server = processes.start_function("payment_webhook", env, logs)
        started.append(server)
        db = firestore.Client(project=processes.PROJECT)
        publisher = pubsub_v1.PublisherClient(
            batch_settings=pubsub_v1.types.BatchSettings(max_messages=1)
        )
        topic = publisher.topic_path(processes.PROJECT, "payments")
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
            assert answer.status_code == (401 if headers else 200), answer.text
            return spent

        def bare(request: dict[str, Any]) -> float:
            payment_id = request["body"]["data"]["id"]
            began = time.perf_counter()
            payment = bare_session.get(
                f"{sandbox.url}/v1/payments/{payment_id}",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10,
            ).json()
            booking = db.document(f"virtualClasses/{payment['external_reference']}").get()
            message = {"preferenceId": booking.get("preferenceId"), "status": payment["status"]}
            publisher.publish(topic, json.dumps(message).encode()).result(timeout=10)
            return time.perf_counter() - began

        cold = post(prepare(0))
        bare(prepare(0))  # the bare side's own first call, not counted
        webhook_times: list[float] = []
        bare_times: list[float] = []
        for index in range(1, notifications + 1):
            request = prepare(index)
            webhook_times.append(post(request))
            bare_times.append(bare(prepare(index)))
        reads_before = (
            SandboxControl(sandbox.url).stats()["requests"].get("mercadopago.payments.get", 0)
        )
        request = prepare(0)
        refused = post(request, {**request["headers"], "x-signature": "ts=1,v1=00"})
        reads_after = (
            SandboxControl(sandbox.url).stats()["requests"].get("mercadopago.payments.get", 0)
        )
        median_webhook = statistics.median(webhook_times)
        median_bare = statistics.median(bare_times)
        return {
            "notifications": notifications,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "first_notification_ms": _ms(cold),
            "webhook_median_ms": _ms(median_webhook),
            "webhook_p95_ms": _ms(sorted(webhook_times)[int(len(webhook_times) * 0.95) - 1]),
            "bare_median_ms": _ms(median_bare),
            "ratio": round(median_webhook / median_bare, 2),
            "bad_signature_ms": _ms(refused),
            "mercadopago_reads_for_bad_signature": reads_after - reads_before,
        }
    finally:
        for process in reversed(started):
            process.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=100)
    args = parser.parse_args()
    result = run(args.notifications)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
