"""No slot sold twice: the slot guard decides, inside the booking's transaction, whether
its time is free of other classes, live checkouts and the calendar's own busy events.

Through create_event's real app, against the Firestore emulator and the Google sandbox.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from shared.domain import sync
from tests.support.calendar_sync import admin_calendar
from tests.support.scheduling import (
    STUDENT_EMAIL,
    app_client,
    classcal_events,
    configure,
    deliver,
    deliver_until_acked,
    next_class_start,
    payment,
    read_booking,
    records,
    sandbox_calls,
    write_abandoned_checkouts,
    write_booking,
)


@pytest.fixture
def client(connected: dict[str, Any]) -> Any:
    return app_client()


def live_events(sandbox: Any) -> list[dict[str, Any]]:
    return [e for e in classcal_events(sandbox) if e.get("status") != "cancelled"]


def pay_all_at_once(messages: list[bytes]) -> list[int]:
    """Deliver every message at the same moment, each on its own instance; then let
    Pub/Sub redeliver what was not acknowledged, until everything is."""
    barrier = threading.Barrier(len(messages))
    statuses: dict[int, int] = {}

    def one(index: int, message: bytes) -> None:
        barrier.wait()
        statuses[index] = deliver(app_client(), message)

    threads = [threading.Thread(target=one, args=(i, m)) for i, m in enumerate(messages)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for index, status in sorted(statuses.items()):
        if status != 200:
            deliver_until_acked(app_client(), messages[index], attempts=80)
    return [statuses[i] for i in range(len(messages))]


def state(firestore: Any, booking_id: str) -> tuple[str | None, str | None]:
    data = read_booking(firestore, booking_id)
    return data.get("status"), data.get("schedulingReason")


def test_two_bookings_for_the_same_hour_paid_at_once_schedule_one(
    client: Any, firestore: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The Meet link is ready on the insert's answer: no conference poll widens the window
    # in which the loser finds the winner still being processed rather than scheduled.
    sandbox.set_conference(pending_reads=0)
    start = next_class_start()
    first = write_booking(firestore, start=start)
    second = write_booking(firestore, start=start)

    statuses = pay_all_at_once([payment(first.preference_id), payment(second.preference_id)])

    assert set(statuses) <= {200, 500}
    outcomes = sorted([state(firestore, first.booking_id), state(firestore, second.booking_id)])
    assert outcomes == [("pending", "slot_taken"), ("scheduled", None)]
    assert len(live_events(sandbox)) == 1
    taken = first if state(firestore, first.booking_id)[1] == "slot_taken" else second
    stored = read_booking(firestore, taken.booking_id)
    assert stored["schedulingState"] == "failed"
    assert "googleEventId" not in stored
    assert "accessCode" not in stored
    # The message says what it clashed with (the winner's claim, or, when both were in
    # flight, its checkout that was opened first), without naming anyone.
    message = stored["schedulingMessage"]
    assert "another class" in message or "started earlier and is being paid" in message
    for private in (first.student_id, second.student_id, STUDENT_EMAIL, first.booking_id):
        assert private not in message
    assert records(caplog, reason="slot_taken", booking_id=taken.booking_id)
    assert any(
        r.levelname == "ERROR" for r in records(caplog, reason="slot_taken", outcome="failed")
    )


@pytest.mark.slow
def test_twenty_overlapping_payments_at_once_make_exactly_one_event(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    base = next_class_start()
    # Every one of these contains base+38 min .. base+60 min: each pair overlaps.
    booked = [write_booking(firestore, start=base + timedelta(minutes=2 * n)) for n in range(20)]

    pay_all_at_once([payment(b.preference_id) for b in booked])

    outcomes = [state(firestore, b.booking_id) for b in booked]
    assert outcomes.count(("scheduled", None)) == 1
    assert outcomes.count(("pending", "slot_taken")) == 19
    assert len(live_events(sandbox)) == 1
    assert sandbox_calls(sandbox, "calendar.events.insert") == 1


@pytest.mark.slow
def test_touching_intervals_are_both_scheduled(client: Any, firestore: Any, sandbox: Any) -> None:
    start = next_class_start()
    morning = write_booking(firestore, start=start, minutes=60)
    next_one = write_booking(firestore, start=start + timedelta(minutes=60), minutes=60)

    pay_all_at_once([payment(morning.preference_id), payment(next_one.preference_id)])

    assert state(firestore, morning.booking_id)[0] == "scheduled"
    assert state(firestore, next_one.booking_id)[0] == "scheduled"
    assert len(live_events(sandbox)) == 2


def test_an_earlier_live_hold_blocks_a_later_payment(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    start = next_class_start()
    now = datetime.now(UTC)
    write_booking(firestore, start=start, createdAt=now - timedelta(minutes=5))  # checkout open
    later = write_booking(firestore, start=start + timedelta(minutes=30), createdAt=now)

    assert deliver(client, payment(later.preference_id)) == 200

    assert state(firestore, later.booking_id) == ("pending", "slot_taken")
    assert "being paid" in read_booking(firestore, later.booking_id)["schedulingMessage"]
    assert live_events(sandbox) == []


def test_an_earlier_live_hold_blocks_a_later_payment_behind_a_thousand_abandoned_checkouts(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    # Checkouts nobody paid stay pending for good; the guard must still see a live one.
    write_abandoned_checkouts(firestore, 1000)
    start = next_class_start()
    now = datetime.now(UTC)
    write_booking(firestore, start=start, createdAt=now - timedelta(minutes=5))  # checkout open
    later = write_booking(firestore, start=start + timedelta(minutes=30), createdAt=now)

    assert deliver(client, payment(later.preference_id)) == 200

    assert state(firestore, later.booking_id) == ("pending", "slot_taken")
    assert live_events(sandbox) == []


@pytest.mark.parametrize("as_text", [("startTime", "endTime"), ("startTime",), ("endTime",)])
def test_an_earlier_live_hold_with_rfc3339_times_blocks_a_later_payment(
    client: Any, firestore: Any, sandbox: Any, as_text: tuple[str, ...]
) -> None:
    # The booking page may write the times as strings with an offset (docs/bookings.md),
    # one of them or both; a range over timestamps matches neither.
    start = next_class_start()
    now = datetime.now(UTC)
    open_checkout = write_booking(firestore, start=start, createdAt=now - timedelta(minutes=5))
    times = {"startTime": start, "endTime": start + timedelta(hours=1)}
    firestore.collection("virtualClasses").document(open_checkout.booking_id).update(
        {f: times[f].astimezone(timezone(timedelta(hours=-3))).isoformat() for f in as_text}
    )
    later = write_booking(firestore, start=start + timedelta(minutes=30), createdAt=now)

    assert deliver(client, payment(later.preference_id)) == 200

    assert state(firestore, later.booking_id) == ("pending", "slot_taken")
    assert live_events(sandbox) == []


def test_a_later_hold_does_not_block_an_earlier_booking(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    start = next_class_start()
    now = datetime.now(UTC)
    earlier = write_booking(firestore, start=start, createdAt=now - timedelta(minutes=5))
    write_booking(firestore, start=start, createdAt=now - timedelta(minutes=1))

    assert deliver(client, payment(earlier.preference_id)) == 200

    assert state(firestore, earlier.booking_id)[0] == "scheduled"


def test_an_expired_hold_does_not_block(
    env: pytest.MonkeyPatch, client: Any, firestore: Any, sandbox: Any
) -> None:
    configure(env, HOLD_MINUTES="15")
    start = next_class_start()
    now = datetime.now(UTC)
    write_booking(firestore, start=start, createdAt=now - timedelta(minutes=16))
    later = write_booking(firestore, start=start, createdAt=now)

    assert deliver(client, payment(later.preference_id)) == 200

    assert state(firestore, later.booking_id)[0] == "scheduled"


def test_hold_minutes_zero_turns_holds_off(
    env: pytest.MonkeyPatch, client: Any, firestore: Any, sandbox: Any
) -> None:
    configure(env, HOLD_MINUTES="0")
    start = next_class_start()
    now = datetime.now(UTC)
    write_booking(firestore, start=start, createdAt=now - timedelta(minutes=1))
    later = write_booking(firestore, start=start, createdAt=now)

    assert deliver(client, payment(later.preference_id)) == 200

    assert state(firestore, later.booking_id)[0] == "scheduled"


def test_an_event_added_in_google_blocks_a_later_payment_once_synced(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    start = next_class_start()
    admin = admin_calendar(sandbox)
    admin.events().insert(
        calendarId="primary",
        body={
            "summary": "Dentist",
            "start": {"dateTime": (start + timedelta(minutes=15)).isoformat()},
            "end": {"dateTime": (start + timedelta(minutes=45)).isoformat()},
        },
    ).execute()
    sync.sync_calendar()  # what the event's push notification runs
    booking = write_booking(firestore, start=start)

    assert deliver(client, payment(booking.preference_id)) == 200

    assert state(firestore, booking.booking_id) == ("pending", "slot_taken")
    message = read_booking(firestore, booking.booking_id)["schedulingMessage"]
    assert "school's calendar" in message
    assert "Dentist" not in message


def test_a_transparent_event_in_google_does_not_block(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    start = next_class_start()
    admin_calendar(sandbox).events().insert(
        calendarId="primary",
        body={
            "summary": "Available, just a note",
            "transparency": "transparent",
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
        },
    ).execute()
    sync.sync_calendar()
    booking = write_booking(firestore, start=start)

    assert deliver(client, payment(booking.preference_id)) == 200

    assert state(firestore, booking.booking_id)[0] == "scheduled"


def test_a_refund_frees_the_slot_for_the_next_student(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    start = next_class_start()
    first = write_booking(firestore, start=start)
    assert deliver(client, payment(first.preference_id)) == 200
    assert state(firestore, first.booking_id)[0] == "scheduled"
    sync.sync_calendar()  # the first class's event is in the mirror now

    assert deliver(client, payment(first.preference_id, "refunded")) == 200
    sync.sync_calendar()  # its deletion too
    second = write_booking(firestore, start=start)
    assert deliver(client, payment(second.preference_id)) == 200

    assert state(firestore, first.booking_id)[0] == "cancelled"
    assert state(firestore, second.booking_id)[0] == "scheduled"
    assert len(live_events(sandbox)) == 1


def test_a_cancellation_frees_the_claim_even_before_the_mirror_knows(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    start = next_class_start()
    first = write_booking(firestore, start=start)
    assert deliver(client, payment(first.preference_id)) == 200
    assert deliver(client, payment(first.preference_id, "refunded")) == 200
    second = write_booking(firestore, start=start)

    assert deliver(client, payment(second.preference_id)) == 200

    assert state(firestore, second.booking_id)[0] == "scheduled"


def test_a_booking_that_waits_keeps_its_claim_through_redeliveries(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    """A crash or a Google outage between the claim and the event: the claim stands."""
    start = next_class_start()
    first = write_booking(firestore, start=start)
    sandbox.fault(method="POST", path=r"/events$", status=503, count=20)

    assert deliver(client, payment(first.preference_id)) == 500  # waits, Pub/Sub redelivers
    assert read_booking(firestore, first.booking_id)["schedulingState"] == "waiting"
    rival = write_booking(firestore, start=start)
    assert deliver(client, payment(rival.preference_id)) == 200
    sandbox.clear_faults()
    deliver_until_acked(client, payment(first.preference_id))

    assert state(firestore, first.booking_id)[0] == "scheduled"
    assert state(firestore, rival.booking_id) == ("pending", "slot_taken")
    assert len(live_events(sandbox)) == 1


def test_the_same_approved_payment_redelivered_keeps_its_own_slot(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = write_booking(firestore)
    for _ in range(3):
        assert deliver(client, payment(booking.preference_id)) == 200
    sync.sync_calendar()  # its own event in the mirror does not count against it
    assert deliver(client, payment(booking.preference_id)) == 200

    assert state(firestore, booking.booking_id)[0] == "scheduled"
    assert len(live_events(sandbox)) == 1


def test_slot_guard_off_restores_scheduling_without_a_check(
    env: pytest.MonkeyPatch, client: Any, firestore: Any, sandbox: Any
) -> None:
    configure(env, SLOT_GUARD="off")
    start = next_class_start()
    first = write_booking(firestore, start=start)
    second = write_booking(firestore, start=start)

    assert deliver(client, payment(first.preference_id)) == 200
    assert deliver(client, payment(second.preference_id)) == 200

    assert state(firestore, first.booking_id)[0] == "scheduled"
    assert state(firestore, second.booking_id)[0] == "scheduled"
    assert len(live_events(sandbox)) == 2


def test_a_class_moved_in_google_moves_its_claim(client: Any, firestore: Any, sandbox: Any) -> None:
    start = next_class_start()
    moved = write_booking(firestore, start=start)
    assert deliver(client, payment(moved.preference_id)) == 200
    later = start + timedelta(hours=3)
    admin_calendar(sandbox).events().patch(
        calendarId="primary",
        eventId=moved.event_id,
        body={
            "start": {"dateTime": later.isoformat()},
            "end": {"dateTime": (later + timedelta(hours=1)).isoformat()},
        },
    ).execute()
    sync.sync_calendar()

    old_time = write_booking(firestore, start=start)
    new_time = write_booking(firestore, start=later)
    assert deliver(client, payment(old_time.preference_id)) == 200
    assert deliver(client, payment(new_time.preference_id)) == 200

    assert state(firestore, old_time.booking_id)[0] == "scheduled"
    assert state(firestore, new_time.booking_id) == ("pending", "slot_taken")


def test_the_claim_is_on_the_booking_and_on_every_hour_it_touches(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    # 23:30 UTC for an hour: the class touches two UTC hours (and days), and claims both.
    start = next_class_start().replace(hour=23, minute=30)
    booking = write_booking(firestore, start=start)

    assert deliver(client, payment(booking.preference_id)) == 200

    claim = read_booking(firestore, booking.booking_id)["slotClaim"]
    assert claim["calendarId"] == "primary"
    assert claim["hours"] == [
        start.strftime("%Y-%m-%dT23"),
        (start + timedelta(hours=1)).strftime("%Y-%m-%dT00"),
    ]
    for hour in claim["hours"]:
        data = firestore.document(f"calendars/primary/claims/{hour}").get().to_dict()
        assert booking.booking_id in data["claims"]


def test_a_failed_booking_releases_its_claim(
    env: pytest.MonkeyPatch, client: Any, firestore: Any, sandbox: Any
) -> None:
    start = next_class_start()
    broken = write_booking(firestore, start=start, classType=None)  # fails: no classType

    assert deliver(client, payment(broken.preference_id)) == 200
    assert read_booking(firestore, broken.booking_id)["schedulingReason"] == "missing_class_type"
    assert "slotClaim" not in read_booking(firestore, broken.booking_id)
    other = write_booking(firestore, start=start)
    assert deliver(client, payment(other.preference_id)) == 200

    assert state(firestore, other.booking_id)[0] == "scheduled"
