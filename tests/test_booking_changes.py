"""booking_changes through functions-framework's real app, against the Firestore emulator
and the Google sandbox: the platform moves a class (the same event, the same Meet link)
or cancels it, exactly once, whatever is delivered twice, at once or out of order."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from localstack.processes import cloud_event_headers, pubsub_envelope
from shared.domain import sync
from tests.support.scheduling import (
    STUDENT_EMAIL,
    activities,
    app_client,
    classcal_events,
    configure,
    deliver,
    next_class_start,
    payment,
    read_booking,
    records,
    sandbox_calls,
    write_booking,
)

SOURCE = Path(__file__).resolve().parent.parent / "functions" / "booking_changes" / "main.py"


def changes_client() -> Any:
    return functions_framework.create_app("booking_changes", str(SOURCE)).test_client()


def send(client: Any, change: dict[str, Any] | bytes) -> int:
    data = change if isinstance(change, bytes) else json.dumps(change).encode()
    response = client.post(
        "/",
        json=pubsub_envelope(data, subscription="booking-changes-booking-changes"),
        headers=cloud_event_headers(topic="booking-changes"),
    )
    return int(response.status_code)


def send_until_acked(client: Any, change: dict[str, Any], attempts: int = 60) -> int:
    import time

    for attempt in range(1, attempts + 1):
        if send(client, change) == 200:
            return attempt
        time.sleep(0.1)
    raise AssertionError(f"not acknowledged after {attempts} deliveries")


def move(booking_id: str, start: datetime, minutes: int = 60, **extra: Any) -> dict[str, Any]:
    return {
        "action": "reschedule",
        "bookingId": booking_id,
        "startTime": start.isoformat(),
        "endTime": (start + timedelta(minutes=minutes)).isoformat(),
        "requestedAt": extra.pop("requestedAt", datetime.now(UTC).isoformat()),
        **extra,
    }


@pytest.fixture
def payments(connected: Any) -> Any:
    return app_client()


@pytest.fixture
def changes(connected: Any) -> Any:
    return changes_client()


def scheduled(payments: Any, firestore: Any, **fields: Any) -> Any:
    booking = write_booking(firestore, **fields)
    assert deliver(payments, payment(booking.preference_id, paymentId="pay-1")) == 200
    assert read_booking(firestore, booking.booking_id)["status"] == "scheduled"
    return booking


def event_of(sandbox: Any, event_id: str) -> dict[str, Any]:
    [event] = [e for e in classcal_events(sandbox) if e["id"] == event_id]
    return event


def event_start(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["start"]["dateTime"]).astimezone(UTC)


# --- a move to a free time -------------------------------------------------------------


def test_a_reschedule_to_a_free_time_patches_the_same_event_and_moves_the_booking(
    env: pytest.MonkeyPatch,
    payments: Any,
    changes: Any,
    firestore: Any,
    sandbox: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure(env, EVENT_REMINDERS="popup:30")
    booking = scheduled(payments, firestore)
    before = read_booking(firestore, booking.booking_id)
    event_before = event_of(sandbox, booking.event_id)
    new_start = booking.start + timedelta(days=1, hours=2)
    caplog.set_level(logging.INFO)

    assert send(changes, move(booking.booking_id, new_start)) == 200

    event = event_of(sandbox, booking.event_id)
    assert len(classcal_events(sandbox)) == 1  # the same event, no second one
    assert event_start(event) == new_start
    assert event["hangoutLink"] == event_before["hangoutLink"] == before["htmlLink"]
    assert [a["email"] for a in event["attendees"]] == [STUDENT_EMAIL]
    assert event["reminders"] == event_before["reminders"]
    assert event["reminders"]["overrides"] == [{"method": "popup", "minutes": 30}]
    # The student is told: the patch went out with SEND_UPDATES.
    patches = [u for u in event["sandbox"]["sendUpdates"] if u["method"].endswith("patch")]
    assert [(u["sendUpdates"], u["attendees"]) for u in patches] == [("all", [STUDENT_EMAIL])]
    after = read_booking(firestore, booking.booking_id)
    assert after["startTime"] == new_start
    assert after["endTime"] == new_start + timedelta(hours=1)
    assert after["googleEventId"] == booking.event_id
    assert after["htmlLink"] == before["htmlLink"]
    assert after["accessCode"] == before["accessCode"]
    assert after["status"] == "scheduled"
    assert after["reschedule"]["state"] == "done"
    assert after["reschedule"]["previousStart"] == booking.start
    assert "schedulingLeaseOwner" not in after
    assert after["slotClaim"]["start"] == new_start
    assert sandbox_calls(sandbox, "calendar.events.patch") == 1
    assert records(caplog, outcome="rescheduled", booking_id=booking.booking_id)


def test_the_old_time_is_free_again_and_the_new_one_taken(
    payments: Any, changes: Any, firestore: Any, sandbox: Any
) -> None:
    booking = scheduled(payments, firestore)
    new_start = booking.start + timedelta(hours=5)
    assert send(changes, move(booking.booking_id, new_start)) == 200

    at_old_time = write_booking(firestore, start=booking.start)
    at_new_time = write_booking(firestore, start=new_start)
    assert deliver(payments, payment(at_old_time.preference_id)) == 200
    assert deliver(payments, payment(at_new_time.preference_id)) == 200

    assert read_booking(firestore, at_old_time.booking_id)["status"] == "scheduled"
    assert read_booking(firestore, at_new_time.booking_id)["schedulingReason"] == "slot_taken"


def test_a_move_overlapping_its_own_current_time_is_allowed(
    payments: Any, changes: Any, firestore: Any, sandbox: Any
) -> None:
    booking = scheduled(payments, firestore)
    sync.sync_calendar()  # its own event is in the mirror too: neither counts against it
    new_start = booking.start + timedelta(minutes=30)

    assert send(changes, move(booking.booking_id, new_start)) == 200

    assert read_booking(firestore, booking.booking_id)["startTime"] == new_start
    assert event_start(event_of(sandbox, booking.event_id)) == new_start


# --- refused: nothing changes, the booking says why --------------------------------------


def _unchanged(firestore: Any, sandbox: Any, booking: Any, before: dict[str, Any]) -> None:
    after = read_booking(firestore, booking.booking_id)
    for key in ("startTime", "endTime", "status", "htmlLink", "slotClaim", "googleEventId"):
        assert after.get(key) == before.get(key), key
    assert sandbox_calls(sandbox, "calendar.events.patch") == 0


def test_a_reschedule_to_a_taken_time_changes_nothing_and_says_why(
    payments: Any, changes: Any, firestore: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    booking = scheduled(payments, firestore)
    other = scheduled(payments, firestore)
    before = read_booking(firestore, booking.booking_id)

    change = move(booking.booking_id, other.start + timedelta(minutes=30))
    assert send(changes, change) == 200

    _unchanged(firestore, sandbox, booking, before)
    assert event_start(event_of(sandbox, booking.event_id)) == booking.start
    request = read_booking(firestore, booking.booking_id)["reschedule"]
    assert request["state"] == "refused"
    assert request["reason"] == "slot_taken"
    assert request["startTime"] == other.start + timedelta(minutes=30)
    assert "another class" in request["message"]
    assert other.booking_id not in request["message"]
    assert records(caplog, outcome="reschedule_refused", reason="slot_taken")


def test_an_event_in_the_calendar_blocks_a_reschedule(
    payments: Any, changes: Any, firestore: Any, sandbox: Any
) -> None:
    from tests.support.calendar_sync import admin_calendar

    booking = scheduled(payments, firestore)
    target = booking.start + timedelta(hours=4)
    admin_calendar(sandbox).events().insert(
        calendarId="primary",
        body={
            "summary": "Dentist",
            "start": {"dateTime": target.isoformat()},
            "end": {"dateTime": (target + timedelta(minutes=30)).isoformat()},
        },
    ).execute()
    sync.sync_calendar()

    assert send(changes, move(booking.booking_id, target)) == 200

    request = read_booking(firestore, booking.booking_id)["reschedule"]
    assert (request["state"], request["reason"]) == ("refused", "slot_taken")
    assert "Dentist" not in request["message"]


def test_a_reschedule_to_the_past_changes_nothing(
    payments: Any, changes: Any, firestore: Any, sandbox: Any
) -> None:
    booking = scheduled(payments, firestore)
    before = read_booking(firestore, booking.booking_id)

    past = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    assert send(changes, move(booking.booking_id, past)) == 200

    _unchanged(firestore, sandbox, booking, before)
    assert read_booking(firestore, booking.booking_id)["reschedule"]["reason"] == "in_past"


def test_a_reschedule_of_a_cancelled_or_unscheduled_booking_changes_nothing(
    payments: Any, changes: Any, firestore: Any, sandbox: Any
) -> None:
    cancelled = scheduled(payments, firestore)
    assert deliver(payments, payment(cancelled.preference_id, "refunded")) == 200
    unpaid = write_booking(firestore)
    before = read_booking(firestore, cancelled.booking_id)
    target = next_class_start()

    assert send(changes, move(cancelled.booking_id, target)) == 200
    assert send(changes, move(unpaid.booking_id, target + timedelta(hours=2))) == 200

    _unchanged(firestore, sandbox, cancelled, before)
    assert read_booking(firestore, cancelled.booking_id)["reschedule"]["reason"] == "cancelled"
    unpaid_after = read_booking(firestore, unpaid.booking_id)
    assert unpaid_after["reschedule"]["reason"] == "not_scheduled"
    assert unpaid_after["status"] == "pending"
    assert unpaid_after["startTime"] == unpaid.start
    assert "slotClaim" not in unpaid_after


def test_a_reschedule_of_a_booking_that_does_not_exist_is_acknowledged(
    changes: Any, firestore: Any, caplog: pytest.LogCaptureFixture
) -> None:
    assert send(changes, move("class-nobody", next_class_start())) == 200

    assert records(caplog, outcome="rejected", reason="booking_not_found")
    assert firestore.collection("virtualClasses").document("class-nobody").get().exists is False


# --- exactly once, whatever the order ----------------------------------------------------


@pytest.mark.slow
def test_the_same_reschedule_three_times_at_once_patches_once(
    payments: Any, changes: Any, firestore: Any, sandbox: Any
) -> None:
    booking = scheduled(payments, firestore)
    change = move(booking.booking_id, booking.start + timedelta(hours=6))
    barrier = threading.Barrier(3)
    statuses: list[int] = []

    def one() -> None:
        client = changes_client()
        barrier.wait()
        statuses.append(send(client, change))

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(statuses) == 3
    assert set(statuses) <= {200, 500}
    for status in statuses:
        if status != 200:  # another delivery held the booking: Pub/Sub redelivers
            send_until_acked(changes, change)

    assert sandbox_calls(sandbox, "calendar.events.patch") == 1
    after = read_booking(firestore, booking.booking_id)
    assert after["startTime"] == booking.start + timedelta(hours=6)
    assert after["reschedule"]["state"] == "done"
    assert send(changes, change) == 200  # once more, later: nothing more
    assert sandbox_calls(sandbox, "calendar.events.patch") == 1


def test_two_reschedules_out_of_order_end_at_the_later_request(
    payments: Any, changes: Any, firestore: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    booking = scheduled(payments, firestore)
    now = datetime.now(UTC)
    first = move(
        booking.booking_id, booking.start + timedelta(hours=2), requestedAt=now.isoformat()
    )
    second = move(
        booking.booking_id,
        booking.start + timedelta(hours=4),
        requestedAt=(now + timedelta(seconds=1)).isoformat(),
    )
    caplog.set_level(logging.INFO)

    assert send(changes, second) == 200  # the later one arrives first
    assert send(changes, first) == 200

    after = read_booking(firestore, booking.booking_id)
    assert after["startTime"] == booking.start + timedelta(hours=4)
    assert event_start(event_of(sandbox, booking.event_id)) == booking.start + timedelta(hours=4)
    assert sandbox_calls(sandbox, "calendar.events.patch") == 1
    assert records(caplog, outcome="reschedule_stale", booking_id=booking.booking_id)


def test_two_reschedules_in_order_end_at_the_later_request(
    payments: Any, changes: Any, firestore: Any, sandbox: Any
) -> None:
    booking = scheduled(payments, firestore)
    now = datetime.now(UTC)
    first = move(
        booking.booking_id, booking.start + timedelta(hours=2), requestedAt=now.isoformat()
    )
    second = move(
        booking.booking_id,
        booking.start + timedelta(hours=4),
        requestedAt=(now + timedelta(seconds=1)).isoformat(),
    )

    assert send(changes, first) == 200
    assert send(changes, second) == 200
    assert send(changes, first) == 200  # a late redelivery of the first

    after = read_booking(firestore, booking.booking_id)
    assert after["startTime"] == booking.start + timedelta(hours=4)
    assert event_start(event_of(sandbox, booking.event_id)) == booking.start + timedelta(hours=4)
    assert sandbox_calls(sandbox, "calendar.events.patch") == 2


def test_a_failing_patch_keeps_the_new_time_claimed_and_is_finished_by_the_redelivery(
    env: pytest.MonkeyPatch, payments: Any, changes: Any, firestore: Any, sandbox: Any
) -> None:
    booking = scheduled(payments, firestore)
    configure(env, GOOGLE_API_RETRIES="0")
    change = move(booking.booking_id, booking.start + timedelta(hours=3))
    sandbox.fault(method="PATCH", path=r"/events/", status=503, count=1)

    assert send(changes, change) == 500
    waiting = read_booking(firestore, booking.booking_id)
    assert waiting["schedulingState"] == "waiting"
    assert waiting["startTime"] == booking.start  # not moved until Google says so
    assert waiting["reschedule"]["state"] == "accepted"
    # Meanwhile the new time is held for this booking.
    rival = write_booking(firestore, start=booking.start + timedelta(hours=3))
    assert deliver(payments, payment(rival.preference_id)) == 200
    assert read_booking(firestore, rival.booking_id)["schedulingReason"] == "slot_taken"

    assert send(changes, change) == 200

    after = read_booking(firestore, booking.booking_id)
    assert after["startTime"] == booking.start + timedelta(hours=3)
    assert after["schedulingState"] == "done"
    assert event_start(event_of(sandbox, booking.event_id)) == booking.start + timedelta(hours=3)


def test_a_reschedule_of_an_event_deleted_in_google_fails_and_gives_the_time_back(
    payments: Any, changes: Any, firestore: Any, sandbox: Any
) -> None:
    from tests.support.calendar_sync import admin_calendar

    booking = scheduled(payments, firestore)
    admin_calendar(sandbox).events().delete(
        calendarId="primary", eventId=booking.event_id
    ).execute()
    target = booking.start + timedelta(hours=3)

    assert send(changes, move(booking.booking_id, target)) == 200

    after = read_booking(firestore, booking.booking_id)
    assert after["reschedule"]["state"] == "failed"
    assert after["reschedule"]["reason"] == "event_missing"
    assert after["startTime"] == booking.start
    assert after["slotClaim"]["start"] == booking.start
    other = write_booking(firestore, start=target)
    assert deliver(payments, payment(other.preference_id)) == 200
    assert read_booking(firestore, other.booking_id)["status"] == "scheduled"


# --- cancel ------------------------------------------------------------------------------


def test_a_platform_cancel_removes_the_event_and_marks_every_activity(
    payments: Any, changes: Any, firestore: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    booking = scheduled(payments, firestore)
    caplog.set_level(logging.INFO)

    change = {"action": "cancel", "bookingId": booking.booking_id, "reason": "student asked"}
    assert send(changes, change) == 200
    assert send(changes, change) == 200  # redelivered: nothing more

    [event] = classcal_events(sandbox)
    assert event["status"] == "cancelled"
    deletes = [u for u in event["sandbox"]["sendUpdates"] if u["method"].endswith("delete")]
    assert [u["sendUpdates"] for u in deletes] == ["all"]
    after = read_booking(firestore, booking.booking_id)
    assert after["status"] == "cancelled"
    assert after["cancellationReason"] == "cancelled_by_platform"
    assert after["cancellationNote"] == "student asked"
    assert after["eventDeleted"] is True
    assert after["paymentStatus"] == "approved"  # the money is the platform's business
    assert "slotClaim" not in after
    assert [a["status"] for a in activities(firestore)] == ["cancelled"]
    assert sandbox_calls(sandbox, "calendar.events.delete") == 1
    assert records(caplog, outcome="cancelled", booking_id=booking.booking_id)


# --- malformed messages: acknowledged, logged, nothing written ---------------------------

GOOD_TIME = "2031-03-15T10:00:00-03:00"
LATER = "2031-03-15T11:00:00-03:00"


def _reschedule(**change: Any) -> dict[str, Any]:
    return {
        "action": "reschedule",
        "bookingId": "BOOKING",
        "startTime": GOOD_TIME,
        "endTime": LATER,
        "requestedAt": "2026-01-01T00:00:00Z",
        **change,
    }


MALFORMED = {
    "not json": b"{nope",
    "not an object": b'["reschedule"]',
    "not utf-8": b'{"action": "\xff"}',
    "no action": json.dumps({"bookingId": "BOOKING"}).encode(),
    "unknown action": _reschedule(action="move"),
    "action not a string": _reschedule(action=1),
    "booking id a number": _reschedule(bookingId=7),
    "booking id with a slash": _reschedule(bookingId="a/b"),
    "booking id reserved": _reschedule(bookingId="__x__"),
    "start without offset": _reschedule(startTime="2031-03-15T10:00:00"),
    "start a date": _reschedule(startTime="2031-03-15"),
    "start a number": _reschedule(startTime=1900000000),
    "start nonsense": _reschedule(startTime="2031-13-45T10:00:00Z"),
    "end before start": _reschedule(endTime="2031-03-15T09:00:00-03:00"),
    "end equals start": _reschedule(endTime=GOOD_TIME),
    "two days long": _reschedule(endTime="2031-03-17T10:00:00-03:00"),
    "no requestedAt": {k: v for k, v in _reschedule().items() if k != "requestedAt"},
    "requestedAt in the future": _reschedule(requestedAt="2099-01-01T00:00:00Z"),
    "requestedAt null": _reschedule(requestedAt=None),
    "year out of range": _reschedule(startTime="0001-01-01T00:00:00+01:00"),
    "cancel without reason": {"action": "cancel", "bookingId": "BOOKING"},
    "cancel reason not text": {"action": "cancel", "bookingId": "BOOKING", "reason": ["x"]},
    "cancel reason with control characters": {
        "action": "cancel",
        "bookingId": "BOOKING",
        "reason": "a\x00b",
    },
    "cancel reason too long": {"action": "cancel", "bookingId": "BOOKING", "reason": "x" * 501},
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_every_malformed_message_is_acknowledged_with_a_clear_line_and_no_write(
    name: str,
    payments: Any,
    changes: Any,
    firestore: Any,
    sandbox: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    booking = scheduled(payments, firestore)
    before = read_booking(firestore, booking.booking_id)
    value = MALFORMED[name]
    if isinstance(value, dict):
        value = json.loads(json.dumps(value).replace("BOOKING", booking.booking_id))
    calls_before = sandbox.stats()["requests"]

    assert send(changes, value) == 200

    [line] = records(caplog, function="booking_changes", outcome="rejected")
    assert line.reason == "invalid_message"
    assert line.getMessage().startswith("acknowledged without effect: ")
    assert read_booking(firestore, booking.booking_id) == before
    assert sandbox.stats()["requests"] == calls_before


def test_a_later_request_waits_for_an_earlier_one_left_half_done(
    env: pytest.MonkeyPatch, payments: Any, changes: Any, firestore: Any, sandbox: Any
) -> None:
    booking = scheduled(payments, firestore)
    configure(env, GOOGLE_API_RETRIES="0")
    now = datetime.now(UTC)
    first = move(
        booking.booking_id, booking.start + timedelta(hours=2), requestedAt=now.isoformat()
    )
    second = move(
        booking.booking_id,
        booking.start + timedelta(hours=4),
        requestedAt=(now + timedelta(seconds=1)).isoformat(),
    )
    sandbox.fault(method="PATCH", path=r"/events/", status=503, count=1)
    assert send(changes, first) == 500  # accepted, the patch failed: it waits

    assert send(changes, second) == 500  # retried until the first is finished
    assert read_booking(firestore, booking.booking_id)["reschedule"]["state"] == "accepted"
    assert send(changes, first) == 200
    assert send(changes, second) == 200

    after = read_booking(firestore, booking.booking_id)
    assert after["startTime"] == booking.start + timedelta(hours=4)
    assert after["slotClaim"]["start"] == booking.start + timedelta(hours=4)
    assert event_start(event_of(sandbox, booking.event_id)) == booking.start + timedelta(hours=4)


def test_a_reschedule_to_the_time_it_already_has_patches_nothing(
    payments: Any, changes: Any, firestore: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    booking = scheduled(payments, firestore)
    caplog.set_level(logging.INFO)

    assert send(changes, move(booking.booking_id, booking.start)) == 200

    assert sandbox_calls(sandbox, "calendar.events.patch") == 0
    assert read_booking(firestore, booking.booking_id)["reschedule"]["state"] == "done"
    assert records(caplog, outcome="reschedule_unchanged", booking_id=booking.booking_id)


def test_with_send_updates_none_the_move_tells_nobody(
    env: pytest.MonkeyPatch, payments: Any, changes: Any, firestore: Any, sandbox: Any
) -> None:
    booking = scheduled(payments, firestore)
    configure(env, SEND_UPDATES="none")

    assert send(changes, move(booking.booking_id, booking.start + timedelta(hours=2))) == 200

    event = event_of(sandbox, booking.event_id)
    patches = [u for u in event["sandbox"]["sendUpdates"] if u["method"].endswith("patch")]
    assert [u["sendUpdates"] for u in patches] == ["none"]
