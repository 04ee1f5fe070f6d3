"""Helpers for the MercadoPago tests (not collected: no test_ prefix): the sandbox's
MercadoPago configured for classcal, the webhook's real app, and a pull subscription on
the Pub/Sub emulator that shows what was published."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import functions_framework

from localstack import processes
from sandbox.mercadopago.client import MercadoPagoControl
from shared.core.config import reset_config

SOURCE = Path(__file__).resolve().parents[2] / "functions" / "payment_webhook" / "main.py"
ACCESS_TOKEN = "APP_USR-sandbox-access-token"  # the sandbox's application, not a real token
WEBHOOK_SECRET = "sandbox-webhook-secret"  # the sandbox's, not a real secret
FENCE = "_testFence"  # marks the end of what pull() collects
HOOK = "http://127.0.0.1/"  # where the built notifications point; tests post them to the app


def configure_mercadopago(env: Any, sandbox_url: str) -> MercadoPagoControl:
    control = MercadoPagoControl(sandbox_url)
    control.configure(access_token=ACCESS_TOKEN, webhook_secret=WEBHOOK_SECRET)
    env.setenv("MERCADOPAGO_API_URL", sandbox_url)
    env.setenv("MERCADOPAGO_ACCESS_TOKEN", ACCESS_TOKEN)
    env.setenv("MERCADOPAGO_WEBHOOK_SECRET", WEBHOOK_SECRET)
    env.setenv("MERCADOPAGO_HTTP_TIMEOUT_SECONDS", "2")
    reset_config()
    return control


def webhook_client() -> Any:
    return functions_framework.create_app("payment_webhook", str(SOURCE)).test_client()


def send(client: Any, request: dict[str, Any], **changes: Any) -> Any:
    """Post a notification the sandbox built to the webhook's app (``headers``, ``body``
    and ``query`` in ``changes`` replace parts of it, as an attacker would)."""
    parts = urlsplit(request["url"])
    query = changes.get("query", parts.query)
    headers = changes.get("headers", request["headers"])
    body = changes.get("body", request["body"])
    return client.post(f"{parts.path or '/'}?{query}", data=json.dumps(body), headers=headers)


def subscribe(pubsub: processes.PubSub, topic: str = "payments") -> str:
    pubsub.create_topic(topic)
    name = f"{topic}-test-pull"
    status, body = processes.http(
        "PUT",
        f"http://{pubsub.host}/v1/projects/{pubsub.project}/subscriptions/{name}",
        {"topic": f"projects/{pubsub.project}/topics/{topic}", "ackDeadlineSeconds": 10},
    )
    assert status in (200, 409), body
    return name


def pull(
    pubsub: processes.PubSub, subscription: str, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Every message published to the subscription's topic so far (acknowledged), as JSON.

    No fixed wait for "nothing was published": a fence message is published after the
    request under test has been answered, and the subscription is drained until the fence
    arrives, so what was published before it is in hand (the emulator keeps publish
    order within a topic) however quickly or slowly the machine runs.
    """
    topic = subscription.removesuffix("-test-pull")
    fence = uuid.uuid4().hex
    pubsub.publish(topic, [json.dumps({FENCE: fence}).encode()])
    url = f"http://{pubsub.host}/v1/projects/{pubsub.project}/subscriptions/{subscription}"
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        status, body = processes.http(
            "POST", f"{url}:pull", {"maxMessages": 100, "returnImmediately": True}
        )
        assert status == 200, body
        received = json.loads(body or b"{}").get("receivedMessages", [])
        if received:
            ack_ids = [m["ackId"] for m in received]
            processes.http("POST", f"{url}:acknowledge", {"ackIds": ack_ids})
            found.extend(json.loads(base64.b64decode(m["message"]["data"])) for m in received)
        if any(m.get(FENCE) == fence for m in found):
            return [m for m in found if FENCE not in m]
        assert time.monotonic() < deadline, "the fence message never arrived"
        if not received:
            time.sleep(0.02)
