"""A second student paying for a taken slot is refunded by classcal, exactly once, and a
price is only ever MercadoPago's: through create_event's real app (and a real server
that is killed mid-refund), the Firestore emulator and the sandbox's Google and
MercadoPago."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localstack import processes
from shared.domain import refunds, scheduling
from tests.support.mercadopago import (
    HOOK,
    configure_mercadopago,
    pull,
    send,
    subscribe,
    webhook_client,
)
from tests.support.scheduling import (
    app_client,
    configure,
    deliver,
    deliver_until_acked,
    next_class_start,
    payment,
    post,
    read_booking,
    records,
    wait_for,
    write_booking,
)


@pytest.fixture
def mp(connected: Any, sandbox: Any, firestore: Any, env: pytest.MonkeyPatch) -> Any:
    return configure_mercadopago(env, sandbox.url)


def verified(mp: Any, booking: Any, **fields: Any) -> tuple[dict[str, Any], bytes]:
    """A MercadoPago payment for the booking, and the message the webhook publishes for it."""
    paid = mp.create_payment(
        amount=fields.pop("amount", 16500),
        currency="ARS",
        external_reference=booking.booking_id,
        preference_id=booking.preference_id,
        **fields,
    )
    message = payment(
        booking.preference_id,
        paymentId=str(paid["id"]),
        amount=paid["transaction_amount"],
        currency="ARS",
    )
    return paid, message


def taken_slot(firestore: Any) -> tuple[Any, Any]:
    """A first booking scheduled at a time, and a second one for the same time."""
    start = next_class_start()
    first = write_booking(firestore, start=start)
    second = write_booking(firestore, start=start)
    assert deliver(app_client(), payment(first.preference_id)) == 200
    assert read_booking(firestore, first.booking_id)["status"] == "scheduled"
    return first, second


def state(firestore: Any, booking_id: str) -> tuple[Any, Any, Any]:
    data = read_booking(firestore, booking_id)
    return data.get("status"), data.get("schedulingState"), data.get("schedulingReason")


def refunds_of(mp: Any, paid: dict[str, Any]) -> list[dict[str, Any]]:
    return list(mp.payment(paid["id"])["refunds"])


@pytest.mark.slow
def test_three_concurrent_deliveries_refund_once_and_the_refunds_notification_changes_nothing(
    mp: Any, firestore: Any, sandbox: Any, pubsub: Any
) -> None:
    first, second = taken_slot(firestore)
    paid, message = verified(mp, second)
    barrier = threading.Barrier(3)
    statuses: list[int] = []

    def one() -> None:
        barrier.wait()
        statuses.append(deliver(app_client(), message))

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if any(status != 200 for status in statuses):
        deliver_until_acked(app_client(), message)

    assert len(refunds_of(mp, paid)) == 1
    assert mp.payment(paid["id"])["status"] == "refunded"
    ended = read_booking(firestore, second.booking_id)
    assert (ended["status"], ended["schedulingReason"]) == ("cancelled", "slot_taken_refunded")
    assert ended["schedulingState"] == "done"
    assert ended["refundId"] == str(refunds_of(mp, paid)[0]["id"])
    assert read_booking(firestore, first.booking_id)["status"] == "scheduled"
    assert sandbox.stats()["requests"]["mercadopago.refunds.create"] <= 3

    # MercadoPago's own notification of the refund, through the webhook and the topic.
    topic = subscribe(pubsub)
    answer = send(webhook_client(), mp.notify(paid["id"], HOOK, deliver=False)["request"])
    assert answer.status_code == 200
    [refunded] = pull(pubsub, topic)
    assert refunded["status"] == "refunded"
    assert deliver(app_client(), json.dumps(refunded).encode()) == 200
    assert read_booking(firestore, second.booking_id) == ended
    assert len(refunds_of(mp, paid)) == 1


@pytest.fixture
def servers() -> Iterator[list[processes.ManagedProcess]]:
    started: list[processes.ManagedProcess] = []
    yield started
    for server in started:
        server.stop()


@pytest.mark.slow
def test_a_kill_between_the_refund_and_the_booking_write_still_refunds_once(
    mp: Any, firestore: Any, sandbox: Any, servers: list[Any], tmp_path: Path
) -> None:
    _first, second = taken_slot(firestore)
    paid, message = verified(mp, second)
    servers.append(processes.start_function("create_event", {}, tmp_path))
    # MercadoPago takes its time answering the refund, and makes it after the wait.
    sandbox.fault("mercadopago.refunds.create", r"/refunds$", 500, commit=True, delay=3)

    def quietly() -> None:
        with contextlib.suppress(OSError):
            post(servers[0].url, message)

    threading.Thread(target=quietly, daemon=True).start()
    wait_for(
        lambda: sandbox.stats()["requests"].get("mercadopago.refunds.create"),
        what="the refund call",
    )
    servers[0].kill()  # killed while waiting for the refund's answer
    wait_for(lambda: refunds_of(mp, paid), what="the refund to be made")
    assert state(firestore, second.booking_id) == ("pending", "failed", "slot_taken")

    servers.append(processes.start_function("create_event", {}, tmp_path))
    for _ in range(30):
        if post(servers[1].url, message) == 200:
            break
        time.sleep(0.2)

    assert len(refunds_of(mp, paid)) == 1
    assert state(firestore, second.booking_id) == ("cancelled", "done", "slot_taken_refunded")


def test_a_retry_after_a_lost_answer_asks_for_the_same_refund_and_gets_it_back(
    mp: Any, firestore: Any, sandbox: Any
) -> None:
    _first, second = taken_slot(firestore)
    paid, message = verified(mp, second)
    # MercadoPago makes the refund, but its answer is lost: the delivery is retried.
    sandbox.fault("mercadopago.refunds.create", r"/refunds$", 502, commit=True)

    assert deliver(app_client(), message) == 500
    [made] = refunds_of(mp, paid)
    assert state(firestore, second.booking_id) == ("pending", "failed", "slot_taken")

    # The retry that read "approved" just before the refund (maintenance's, or a
    # concurrent delivery's) asks again, with the booking's key: the same refund back.
    outcome = scheduling.schedule_booking(second.booking_id, {})

    assert outcome.outcome == "slot_taken_refunded"
    assert refunds_of(mp, paid) == [made]
    assert sandbox.stats()["requests"]["mercadopago.refunds.create"] == 2
    assert state(firestore, second.booking_id) == ("cancelled", "done", "slot_taken_refunded")


def test_a_refund_mercadopago_refuses_leaves_the_booking_failed_with_the_reason(
    mp: Any, firestore: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _first, second = taken_slot(firestore)
    paid, message = verified(mp, second, days_ago=200)

    assert deliver(app_client(), message) == 200

    assert refunds_of(mp, paid) == []
    data = read_booking(firestore, second.booking_id)
    assert (data["status"], data["schedulingState"], data["schedulingReason"]) == (
        "pending",
        "failed",
        "slot_taken_refund_refused",
    )
    assert "too old" in data["schedulingMessage"]
    assert records(caplog, reason="slot_taken_refund_refused")


def test_without_auto_refund_the_booking_stays_failed_for_a_person(
    mp: Any, firestore: Any, env: pytest.MonkeyPatch
) -> None:
    configure(env, AUTO_REFUND_ON_SLOT_TAKEN="false")
    _first, second = taken_slot(firestore)
    paid, message = verified(mp, second)

    assert deliver(app_client(), message) == 200

    assert refunds_of(mp, paid) == []
    assert state(firestore, second.booking_id) == ("pending", "failed", "slot_taken")


def test_an_unverified_booking_is_never_refunded(mp: Any, firestore: Any, sandbox: Any) -> None:
    _first, second = taken_slot(firestore)

    assert deliver(app_client(), payment(second.preference_id)) == 200

    assert state(firestore, second.booking_id) == ("pending", "failed", "slot_taken")
    assert not sandbox.stats()["requests"].get("mercadopago.refunds.create")


def test_the_idempotency_key_is_the_bookings_own() -> None:
    assert refunds.idempotency_key("class-a") == refunds.idempotency_key("class-a")
    assert refunds.idempotency_key("class-a") != refunds.idempotency_key("class-b")
    assert len(refunds.idempotency_key("x" * 1500)) <= 64


# --- prices ------------------------------------------------------------------------------


def test_an_unverified_message_with_another_amount_leaves_the_price_untouched(
    connected: Any, firestore: Any
) -> None:
    booking = write_booking(firestore, classPrice=15000)

    assert deliver(app_client(), payment(booking.preference_id, amount=1, currency="ARS")) == 200

    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "scheduled"  # a school without MercadoPago still schedules
    assert stored["classPrice"] == 15000


def test_with_mercadopago_the_price_and_status_are_mercadopagos_not_the_messages(
    mp: Any, firestore: Any
) -> None:
    booking = write_booking(firestore, classPrice=15000)
    paid, _ = verified(mp, booking, amount=16500)
    lying = payment(booking.preference_id, paymentId=str(paid["id"]), amount=1, status="approved")

    assert deliver(app_client(), lying) == 200

    stored = read_booking(firestore, booking.booking_id)
    assert (stored["status"], stored["classPrice"]) == ("scheduled", 16500)


def test_a_rejected_payment_is_not_scheduled_whatever_the_message_says(
    mp: Any, firestore: Any
) -> None:
    booking = write_booking(firestore)
    paid, _ = verified(mp, booking, status="rejected")
    lying = payment(booking.preference_id, paymentId=str(paid["id"]), status="approved")

    assert deliver(app_client(), lying) == 200

    stored = read_booking(firestore, booking.booking_id)
    assert (stored["status"], stored["paymentStatus"]) == ("pending", "rejected")


def test_a_message_naming_another_bookings_payment_schedules_nothing(
    mp: Any, firestore: Any
) -> None:
    cheap = write_booking(firestore, classPrice=1)
    booking = write_booking(firestore, classPrice=15000)
    other, _ = verified(mp, cheap, amount=1)
    lying = payment(booking.preference_id, paymentId=str(other["id"]))

    assert deliver(app_client(), lying) == 200  # acknowledged: retrying cannot fix it

    stored = read_booking(firestore, booking.booking_id)
    assert (stored["status"], stored["classPrice"]) == ("pending", 15000)


def test_with_mercadopago_a_message_without_payment_id_sets_no_price(
    mp: Any, firestore: Any
) -> None:
    booking = write_booking(firestore, classPrice=15000)

    assert deliver(app_client(), payment(booking.preference_id, amount=1)) == 200

    assert read_booking(firestore, booking.booking_id)["classPrice"] == 15000
