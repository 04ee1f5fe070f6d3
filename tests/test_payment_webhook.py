"""payment_webhook through functions-framework's real app, the sandbox's MercadoPago and
the Pub/Sub emulator: only a notification signed with the webhook secret is taken, only
MercadoPago's API is believed, and what it says reaches create_event."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from shared.mercadopago import signatures
from tests.support.mercadopago import (
    HOOK,
    WEBHOOK_SECRET,
    configure_mercadopago,
    pull,
    send,
    subscribe,
    webhook_client,
)
from tests.support.scheduling import app_client, deliver, read_booking, records, write_booking


@pytest.fixture
def mp(sandbox: Any, env: pytest.MonkeyPatch) -> Any:
    return configure_mercadopago(env, sandbox.url)


@pytest.fixture
def topic(pubsub: Any) -> str:
    return subscribe(pubsub)


@pytest.fixture
def client(mp: Any, firestore: Any, topic: str) -> Any:
    return webhook_client()


def paid(mp: Any, booking: Any, **fields: Any) -> dict[str, Any]:
    """A MercadoPago payment for the booking, as Checkout Pro makes it."""
    return mp.create_payment(
        **{
            "amount": 16500,
            "currency": "ARS",
            "external_reference": booking.booking_id,
            "preference_id": booking.preference_id,
            **fields,
        }
    )


def notification(mp: Any, payment_id: Any, **options: Any) -> dict[str, Any]:
    return mp.notify(payment_id, HOOK, deliver=False, **options)["request"]


def mp_reads(sandbox: Any) -> int:
    return int(sandbox.stats()["requests"].get("mercadopago.payments.get", 0))


def test_a_signed_approved_notification_ends_in_a_scheduled_class_priced_as_paid(
    connected: Any, mp: Any, client: Any, firestore: Any, pubsub: Any, topic: str
) -> None:
    booking = write_booking(firestore, classPrice=15000)
    payment = paid(mp, booking)

    answer = send(client, notification(mp, payment["id"]))

    assert answer.status_code == 200, answer.get_data()
    assert answer.get_json() == {"outcome": "published"}
    messages = pull(pubsub, topic)
    assert messages == [
        {
            "preferenceId": booking.preference_id,
            "status": "approved",
            "paymentId": str(payment["id"]),
            "amount": 16500,
            "currency": "ARS",
        }
    ]
    # create_event, fed by the topic as its push subscription feeds it.
    assert deliver(app_client(), json.dumps(messages[0]).encode()) == 200
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "scheduled"
    assert stored["classPrice"] == 16500
    assert stored["paymentSource"] == "mercadopago"
    assert stored["paymentCurrency"] == "ARS"


def test_a_payment_without_external_reference_is_found_by_its_merchant_orders_preference(
    mp: Any, client: Any, firestore: Any, pubsub: Any, topic: str
) -> None:
    booking = write_booking(firestore)
    payment = paid(mp, booking, external_reference=None)

    assert send(client, notification(mp, payment["id"])).status_code == 200

    [message] = pull(pubsub, topic)
    assert message["preferenceId"] == booking.preference_id


def _missing_header(request: dict[str, Any]) -> dict[str, Any]:
    headers = {k: v for k, v in request["headers"].items() if k != "x-signature"}
    return {"headers": headers}


def _missing_v1(request: dict[str, Any]) -> dict[str, Any]:
    ts = request["headers"]["x-signature"].split(",")[0]
    return {"headers": {**request["headers"], "x-signature": ts}}


def _id_changed(request: dict[str, Any]) -> dict[str, Any]:
    query = request["url"].split("?", 1)[1].replace("data.id=", "data.id=9")
    return {
        "query": query,
        "body": {**request["body"], "data": {"id": "9" + request["body"]["data"]["id"]}},
    }


def _body_changed(request: dict[str, Any]) -> dict[str, Any]:
    return {"body": {**request["body"], "data": {"id": "1"}}}


def _request_id_changed(request: dict[str, Any]) -> dict[str, Any]:
    return {"headers": {**request["headers"], "x-request-id": "another-request"}}


@pytest.mark.parametrize(
    ("tamper", "options", "reason"),
    [
        pytest.param(_missing_header, {}, "signature_missing", id="missing-header"),
        pytest.param(_missing_v1, {}, "signature_malformed", id="missing-v1"),
        pytest.param(None, {"secret": "not-the-secret"}, "signature_mismatch", id="wrong-secret"),
        pytest.param(_id_changed, {}, "signature_mismatch", id="id-changed"),
        pytest.param(_body_changed, {}, "signature_body_mismatch", id="body-changed"),
        pytest.param(_request_id_changed, {}, "signature_mismatch", id="request-id-changed"),
        pytest.param(
            None, {"ts": str(int(time.time()) - 3600)}, "signature_stale", id="stale-ts-seconds"
        ),
        pytest.param(
            None,
            {"ts": str(int((time.time() + 3600) * 1000))},
            "signature_stale",
            id="future-ts-milliseconds",
        ),
    ],
)
def test_a_bad_signature_gets_401_and_publishes_nothing(
    mp: Any,
    client: Any,
    firestore: Any,
    pubsub: Any,
    topic: str,
    sandbox: Any,
    tamper: Any,
    options: dict[str, Any],
    reason: str,
) -> None:
    booking = write_booking(firestore)
    request = notification(mp, paid(mp, booking)["id"], **options)

    answer = send(client, request, **(tamper(request) if tamper else {}))

    assert answer.status_code == 401
    assert answer.get_json()["reason"] == reason
    assert WEBHOOK_SECRET not in answer.get_data(as_text=True)
    assert pull(pubsub, topic) == []
    assert mp_reads(sandbox) == 0
    assert read_booking(firestore, booking.booking_id).get("paymentStatus") is None


def test_a_timestamp_in_seconds_is_accepted(
    mp: Any, client: Any, firestore: Any, pubsub: Any, topic: str
) -> None:
    booking = write_booking(firestore)
    request = notification(mp, paid(mp, booking)["id"], ts=str(int(time.time())))

    assert send(client, request).status_code == 200
    assert len(pull(pubsub, topic)) == 1


def test_the_body_is_never_believed_only_mercadopagos_answer(
    mp: Any, client: Any, firestore: Any, pubsub: Any, topic: str
) -> None:
    booking = write_booking(firestore)
    payment = paid(mp, booking, status="rejected", amount=1)
    request = notification(mp, payment["id"])
    lying = {**request["body"], "status": "approved", "transaction_amount": 16500}
    lying["data"] = {**lying["data"], "status": "approved"}

    assert send(client, request, body=lying).status_code == 200

    [message] = pull(pubsub, topic)
    assert message["status"] == "rejected"
    assert message["amount"] == 1


def test_mercadopago_unavailable_gets_503_and_its_retry_succeeds(
    mp: Any, client: Any, firestore: Any, pubsub: Any, topic: str, sandbox: Any
) -> None:
    booking = write_booking(firestore)
    request = notification(mp, paid(mp, booking)["id"])
    sandbox.fault("GET", r"^/v1/payments/", 502, count=1)

    first = send(client, request)

    assert first.status_code == 503
    assert first.get_json()["reason"] == "mercadopago_unavailable"
    assert pull(pubsub, topic) == []
    assert send(client, request).status_code == 200  # MercadoPago delivers it again
    assert len(pull(pubsub, topic)) == 1


@pytest.mark.slow
def test_mercadopago_not_answering_gets_503_within_a_few_seconds(
    mp: Any, client: Any, firestore: Any, pubsub: Any, topic: str, sandbox: Any
) -> None:
    booking = write_booking(firestore)
    request = notification(mp, paid(mp, booking)["id"])
    sandbox.fault("GET", r"^/v1/payments/", 0, delay=6, count=1)

    started = time.monotonic()
    answer = send(client, request)

    assert answer.status_code == 503
    assert time.monotonic() - started < 4  # MERCADOPAGO_HTTP_TIMEOUT_SECONDS is 2 here
    assert pull(pubsub, topic) == []


@pytest.mark.parametrize("status", [401, 403])
def test_mercadopago_refusing_the_token_is_a_503_and_an_error_naming_the_variable(
    mp: Any,
    client: Any,
    firestore: Any,
    pubsub: Any,
    topic: str,
    sandbox: Any,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    booking = write_booking(firestore)
    request = notification(mp, paid(mp, booking)["id"])
    sandbox.fault("GET", r"^/v1/payments/", status, reason="unauthorized", count=1)

    answer = send(client, request)

    assert answer.status_code == 503
    [line] = records(caplog, outcome="misconfigured")
    assert line.levelno == logging.ERROR
    assert "MERCADOPAGO_ACCESS_TOKEN" in line.getMessage()
    assert pull(pubsub, topic) == []


def test_an_unknown_payment_and_another_type_are_acknowledged_and_publish_nothing(
    mp: Any, client: Any, firestore: Any, pubsub: Any, topic: str
) -> None:
    booking = write_booking(firestore)
    payment = paid(mp, booking)

    unknown = send(client, notification(mp, "999999"))
    order = send(client, notification(mp, payment["order"]["id"], type="merchant_order"))

    assert (unknown.status_code, unknown.get_json()) == (200, {"outcome": "unknown_payment"})
    assert (order.status_code, order.get_json()) == (200, {"outcome": "ignored"})
    assert pull(pubsub, topic) == []


def test_a_payment_of_no_booking_is_acknowledged_and_publishes_nothing(
    mp: Any, client: Any, firestore: Any, pubsub: Any, topic: str
) -> None:
    payment = mp.create_payment(amount=10, external_reference="not-a-booking", preference_id="x-1")

    answer = send(client, notification(mp, payment["id"]))

    assert (answer.status_code, answer.get_json()) == (200, {"outcome": "no_booking"})
    assert pull(pubsub, topic) == []


def test_only_post_is_accepted(client: Any) -> None:
    answer = client.get("/?data.id=1&type=payment")
    assert answer.status_code == 405


def test_without_the_webhook_secret_the_webhook_is_misconfigured(
    client: Any, env: pytest.MonkeyPatch
) -> None:
    env.delenv("MERCADOPAGO_WEBHOOK_SECRET")
    from shared.core.config import reset_config

    reset_config()
    answer = client.post("/?data.id=1&type=payment", json={})
    assert answer.status_code == 503


# --- the signature itself, as MercadoPago documents it ---------------------------------


def test_the_manifest_leaves_missing_parts_out_and_lower_cases_alphanumeric_ids() -> None:
    assert signatures.manifest("ABC123", "req-1", "1704908010") == (
        "id:abc123;request-id:req-1;ts:1704908010;"
    )
    assert signatures.manifest("A-B", None, "17") == "id:A-B;ts:17;"
    assert signatures.manifest(None, "r", "17") == "request-id:r;ts:17;"


def test_an_upper_case_alphanumeric_id_verifies_against_its_lower_cased_manifest() -> None:
    import hashlib
    import hmac

    now = 1_704_908_010
    digest = hmac.new(b"k", b"id:abc;request-id:r;ts:1704908010;", hashlib.sha256).hexdigest()
    signatures.verify(
        f"ts={now},v1={digest}",
        request_id="r",
        data_id="ABC",
        secret="k",
        tolerance_seconds=1,
        now=now,
    )
    with pytest.raises(signatures.InvalidSignature):
        signatures.verify(
            f"ts={now},v1={digest}",
            request_id="r",
            data_id="ABD",
            secret="k",
            tolerance_seconds=1,
            now=now,
        )
