"""Cancellations from payments (refunded, cancelled, charged_back) through the real app,
against the Firestore emulator and the Google sandbox."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain import event_shape, scheduling
from shared.google import calendar
from tests.support import retries
from tests.support.scheduling import (
    STUDENT_EMAIL,
    activities,
    app_client,
    classcal_events,
    configure,
    deliver,
    deliver_until_acked,
    payment,
    read_booking,
    records,
    sandbox_calls,
    wait_for,
    write_booking,
)


@pytest.fixture
def client(connected: Any) -> Any:
    return app_client()


def _scheduled(client: Any, firestore: Any, **fields: Any) -> Any:
    booking = write_booking(firestore, **fields)
    assert deliver(client, payment(booking.preference_id, paymentId="pay-1")) == 200
    assert read_booking(firestore, booking.booking_id)["status"] == "scheduled"
    return booking


def _live(sandbox: Any) -> list[dict[str, Any]]:
    return [e for e in classcal_events(sandbox) if e.get("status") != "cancelled"]


@pytest.mark.parametrize("status", ["refunded", "cancelled", "charged_back"])
def test_a_refund_of_a_scheduled_class_removes_the_event_and_cancels_the_booking(
    client: Any, firestore: Any, sandbox: Any, caplog: pytest.LogCaptureFixture, status: str
) -> None:
    booking = _scheduled(client, firestore)
    caplog.set_level(logging.INFO)

    code = deliver(client, payment(booking.preference_id, status, paymentId="pay-1"))

    assert code == 200
    events = classcal_events(sandbox)
    assert [e["status"] for e in events] == ["cancelled"]
    # The student is told, as configured (SEND_UPDATES, default all).
    deletes = [u for u in events[0]["sandbox"]["sendUpdates"] if u["method"].endswith("delete")]
    assert [(u["sendUpdates"], u["attendees"]) for u in deletes] == [("all", [STUDENT_EMAIL])]
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "cancelled"
    assert stored["cancellationReason"] == status
    assert stored["paymentStatus"] == status
    assert isinstance(stored["cancelledAt"], datetime)
    assert stored["eventDeleted"] is True
    assert stored["schedulingState"] == "done"
    [activity] = activities(firestore)
    assert activity["status"] == "cancelled"
    assert isinstance(activity["cancelledAt"], datetime)
    assert records(caplog, outcome="cancelled", booking_id=booking.booking_id)


def test_a_second_refund_delivery_is_success_and_calls_nothing(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = _scheduled(client, firestore)
    refund = payment(booking.preference_id, "refunded")
    assert deliver(client, refund) == 200
    after_first = read_booking(firestore, booking.booking_id)
    deletes = sandbox_calls(sandbox, "calendar.events.delete")

    code = deliver(client, refund)

    assert code == 200
    assert sandbox_calls(sandbox, "calendar.events.delete") == deletes == 1
    assert read_booking(firestore, booking.booking_id) == after_first


def test_an_event_already_deleted_in_google_is_success(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = _scheduled(client, firestore)
    calendar.delete_event(booking.event_id, send_updates="none")  # the admin, in Calendar

    code = deliver(client, payment(booking.preference_id, "refunded"))

    assert code == 200  # Google's 410 means the goal is met
    assert sandbox_calls(sandbox, "calendar.events.delete") == 2
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "cancelled"
    assert stored["eventDeleted"] is True


def test_a_refund_of_a_booking_never_scheduled_records_it_and_creates_nothing(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = write_booking(firestore)

    code = deliver(client, payment(booking.preference_id, "refunded", paymentId="pay-2"))

    assert code == 200
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "cancelled"
    assert stored["paymentStatus"] == "refunded"
    assert stored["paymentId"] == "pay-2"
    assert "googleEventId" not in stored
    assert "accessCode" not in stored
    assert classcal_events(sandbox) == []
    assert sandbox.stats()["requests"].get("calendar.events.delete", 0) == 0
    assert activities(firestore) == []


def test_an_approved_redelivery_after_a_refund_does_not_recreate_the_class(
    client: Any, firestore: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    booking = _scheduled(client, firestore)
    assert deliver(client, payment(booking.preference_id, "refunded")) == 200
    caplog.set_level(logging.INFO)

    code = deliver(client, payment(booking.preference_id, "approved", paymentId="pay-1"))

    assert code == 200
    assert sandbox_calls(sandbox, "calendar.events.insert") == 1
    assert _live(sandbox) == []
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "cancelled"
    assert stored["paymentStatus"] == "refunded"
    assert records(caplog, outcome="cancelled", booking_id=booking.booking_id)


def test_an_approval_arriving_after_the_refund_of_an_unscheduled_booking_creates_nothing(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = write_booking(firestore)
    assert deliver(client, payment(booking.preference_id, "refunded")) == 200

    code = deliver(client, payment(booking.preference_id, "approved"))

    assert code == 200
    assert sandbox_calls(sandbox, "calendar.events.insert") == 0
    assert read_booking(firestore, booking.booking_id)["status"] == "cancelled"
    assert activities(firestore) == []


def test_an_event_orphaned_by_a_crashed_attempt_is_removed_by_the_refund(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    # An attempt claimed the booking, made the event and died before recording it.
    booking = write_booking(firestore, schedulingAttempts=1, paymentStatus="approved")
    body = event_shape.event_body(
        booking.booking_id,
        read_booking(firestore, booking.booking_id),
        booking.start,
        booking.end,
        STUDENT_EMAIL,
        scheduling.get_config(),
    )
    calendar.insert_event(body, send_updates="none")

    code = deliver(client, payment(booking.preference_id, "refunded"))

    assert code == 200
    assert _live(sandbox) == []
    assert read_booking(firestore, booking.booking_id)["eventDeleted"] is True


def test_a_failing_delete_keeps_the_booking_cancelled_and_is_retried(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = _scheduled(client, firestore)
    sandbox.fault(method="DELETE", path=r"/events/", status=503, reason="backendError", count=1)
    refund = payment(booking.preference_id, "refunded")

    first = deliver(client, refund)
    waiting = read_booking(firestore, booking.booking_id)
    second = deliver(client, refund)

    assert first == 500
    assert waiting["status"] == "cancelled"  # an approved redelivery now finds it cancelled
    assert waiting["eventDeleted"] is False
    assert waiting["schedulingState"] == "waiting"
    assert waiting["schedulingReason"] == "google_unavailable"
    assert "removing its Calendar event" in waiting["schedulingMessage"]
    assert second == 200
    assert _live(sandbox) == []
    assert read_booking(firestore, booking.booking_id)["eventDeleted"] is True


def test_an_approved_delivery_finishes_a_cancellation_left_half_done(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = _scheduled(client, firestore)
    sandbox.fault(method="DELETE", path=r"/events/", status=503, reason="backendError", count=1)
    assert deliver(client, payment(booking.preference_id, "refunded")) == 500

    code = deliver(client, payment(booking.preference_id, "approved"))

    assert code == 200
    assert _live(sandbox) == []
    assert sandbox_calls(sandbox, "calendar.events.insert") == 1
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "cancelled"
    assert stored["eventDeleted"] is True


def test_a_refund_waits_while_a_delivery_is_scheduling_the_booking(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = write_booking(
        firestore,
        schedulingLeaseOwner="scheduling-delivery",
        schedulingLeaseUntil=datetime.now(UTC) + timedelta(minutes=2),
    )

    code = deliver(client, payment(booking.preference_id, "refunded"))

    assert code == 500  # retried once the scheduling delivery is done
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "pending"
    assert stored["schedulingLeaseOwner"] == "scheduling-delivery"


@pytest.mark.slow
def test_a_refund_landing_while_a_slow_delivery_makes_the_event_still_wins(
    env: pytest.MonkeyPatch, client: Any, firestore: Any, sandbox: Any
) -> None:
    # The scheduling delivery outlives its lease: its insert is held 3 s by Google, and
    # the client's retry of the lost answer finds the event made.
    configure(env, SCHEDULING_LEASE_SECONDS="1")
    retries.quick(env, 2)
    booking = write_booking(firestore)
    sandbox.fault(method="POST", path=r"/events$", status=503, commit=True, delay=3)
    results: list[int] = []
    slow = threading.Thread(
        target=lambda: results.append(deliver(app_client(), payment(booking.preference_id)))
    )
    slow.start()
    wait_for(lambda: sandbox_calls(sandbox, "calendar.events.insert") == 1, what="the held insert")
    time.sleep(1.2)  # the lease has expired; the insert is still held

    refund = deliver(client, payment(booking.preference_id, "refunded"))
    slow.join(timeout=60)

    assert refund == 200
    assert results == [200]
    assert _live(sandbox) == []
    # The refund found no event yet; the slow delivery saw the cancellation and deleted its own.
    assert sandbox_calls(sandbox, "calendar.events.delete") == 2
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "cancelled"
    assert stored["eventDeleted"] is True
    assert "accessCode" not in stored
    assert activities(firestore) == []
    # Pub/Sub may deliver both again: nothing changes.
    deliver_until_acked(client, payment(booking.preference_id))
    assert _live(sandbox) == []
