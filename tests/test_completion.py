"""Maintenance marks classes that took place ``completed``: the booking, and every user
activity of it, exactly once; never a cancelled class. Through calendar_maintenance's
real app (a Cloud Scheduler tick), against the Firestore emulator and the sandbox."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from localstack.processes import cloud_event_headers, pubsub_envelope
from shared.domain import maintenance
from shared.stores import bookings
from tests.support.calendar_sync import admin_calendar
from tests.support.scheduling import (
    app_client,
    configure,
    deliver,
    payment,
    read_booking,
    records,
    write_booking,
)

SOURCE = Path(__file__).resolve().parent.parent / "functions" / "calendar_maintenance" / "main.py"
NOWHERE = "http://127.0.0.1:9/calendar-webhook"  # loopback, nothing listens


@pytest.fixture
def run(connected: Any, env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Any:
    """Deliver one Cloud Scheduler tick; return (HTTP status, the run's summary fields)."""
    configure(env, CALENDAR_WEBHOOK_URL=NOWHERE)
    client = functions_framework.create_app("calendar_maintenance", str(SOURCE)).test_client()

    def tick() -> tuple[int, dict[str, Any]]:
        caplog.clear()
        response = client.post(
            "/",
            json=pubsub_envelope(b'{"job": "hourly"}'),
            headers=cloud_event_headers(topic="calendar-maintenance"),
        )
        done = records(caplog, function="calendar_maintenance", outcome="ok")
        return response.status_code, (vars(done[-1]) if done else {})

    return tick


def class_that_ended(firestore: Any, sandbox: Any, ago: timedelta, *, guests: int = 1) -> Any:
    """A class scheduled through create_event, then its time moved into the past (as if
    the hours had gone by), with guests' activities as a group class has them."""
    booking = write_booking(firestore)
    assert deliver(app_client(), payment(booking.preference_id)) == 200
    end = (datetime.now(UTC) - ago).replace(microsecond=0)
    times = {"startTime": end - timedelta(hours=1), "endTime": end}
    # In Google too: maintenance's sync would otherwise bring the booking back in step.
    admin_calendar(sandbox).events().patch(
        calendarId="primary",
        eventId=booking.event_id,
        body={k[:-4]: {"dateTime": v.isoformat()} for k, v in times.items()},
    ).execute()
    firestore.collection(bookings.BOOKINGS).document(booking.booking_id).update(times)
    for n in range(guests):
        firestore.collection(bookings.ACTIVITIES).document(f"{booking.booking_id}-guest{n}").set(
            {
                "userId": f"guest-{n}",
                "classId": booking.booking_id,
                "rol": "invitado",
                "completed": False,
            }
        )
    return booking


def activities_of(firestore: Any, booking_id: str) -> dict[str, dict[str, Any]]:
    return {
        s.id: s.to_dict()
        for s in firestore.collection(bookings.ACTIVITIES).stream()
        if (s.to_dict() or {}).get("classId") == booking_id
    }


def test_a_class_that_ended_an_hour_ago_is_completed_with_every_activity_once(
    run: Any, firestore: Any, sandbox: Any
) -> None:
    done = class_that_ended(firestore, sandbox, timedelta(hours=1), guests=2)
    other = write_booking(firestore)  # someone else's activity is not touched
    firestore.collection(bookings.ACTIVITIES).document("unrelated").set(
        {"classId": other.booking_id, "completed": False}
    )

    status, summary = run()

    assert status == 200
    assert summary["classes_completed"] == 1
    stored = read_booking(firestore, done.booking_id)
    assert stored["status"] == "completed"
    assert isinstance(stored["completedAt"], datetime)
    marked = activities_of(firestore, done.booking_id)
    assert len(marked) == 3  # the host and two guests
    assert all(a["completed"] is True for a in marked.values())
    unrelated = firestore.collection(bookings.ACTIVITIES).document("unrelated").get().to_dict()
    assert unrelated["completed"] is False
    first_stamp = stored["completedAt"]

    status, summary = run()

    assert (status, summary["classes_completed"]) == (200, 0)
    assert read_booking(firestore, done.booking_id)["completedAt"] == first_stamp


def test_a_class_ending_in_ten_minutes_is_left_alone(
    run: Any, firestore: Any, sandbox: Any
) -> None:
    soon = class_that_ended(firestore, sandbox, timedelta(minutes=-10))

    status, summary = run()

    assert (status, summary["classes_completed"]) == (200, 0)
    assert read_booking(firestore, soon.booking_id)["status"] == "scheduled"
    assert all(a["completed"] is False for a in activities_of(firestore, soon.booking_id).values())


def test_complete_after_minutes_sets_the_wait(
    run: Any, firestore: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    recent = class_that_ended(firestore, sandbox, timedelta(minutes=20))

    assert run()[1]["classes_completed"] == 0  # the default waits 30 minutes
    configure(env, CALENDAR_WEBHOOK_URL=NOWHERE, COMPLETE_AFTER_MINUTES="10")
    assert run()[1]["classes_completed"] == 1

    assert read_booking(firestore, recent.booking_id)["status"] == "completed"


def test_a_cancelled_class_is_never_completed(run: Any, firestore: Any, sandbox: Any) -> None:
    cancelled = class_that_ended(firestore, sandbox, timedelta(hours=2))
    assert deliver(app_client(), payment(cancelled.preference_id, "refunded")) == 200
    firestore.collection(bookings.ACTIVITIES).document(f"{cancelled.booking_id}-guest0").update(
        {"status": "cancelled"}
    )

    status, summary = run()

    assert (status, summary["classes_completed"]) == (200, 0)
    assert read_booking(firestore, cancelled.booking_id)["status"] == "cancelled"
    for activity in activities_of(firestore, cancelled.booking_id).values():
        assert activity["completed"] is False
        assert activity["status"] == "cancelled"


@pytest.mark.slow
def test_two_runs_at_once_complete_each_class_once(
    connected: Any, firestore: Any, sandbox: Any
) -> None:
    ended = [class_that_ended(firestore, sandbox, timedelta(hours=1)) for _ in range(3)]
    results = [maintenance.MaintenanceResult() for _ in range(2)]
    barrier = threading.Barrier(2)

    def one(result: maintenance.MaintenanceResult) -> None:
        barrier.wait()
        maintenance.complete_classes(result, deadline=float("inf"))

    threads = [threading.Thread(target=one, args=(r,)) for r in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sum(r.classes_completed for r in results) == 3
    for booking in ended:
        assert read_booking(firestore, booking.booking_id)["status"] == "completed"


# --- a reschedule whose message was dead-lettered ----------------------------------------


def test_a_reschedule_left_half_done_is_finished_by_maintenance_once(
    run: Any, firestore: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    import json

    from tests.test_booking_changes import changes_client, send

    booking = write_booking(firestore)
    assert deliver(app_client(), payment(booking.preference_id)) == 200
    link = read_booking(firestore, booking.booking_id)["htmlLink"]
    target = booking.start + timedelta(hours=3)
    change = {
        "action": "reschedule",
        "bookingId": booking.booking_id,
        "startTime": target.isoformat(),
        "endTime": (target + timedelta(hours=1)).isoformat(),
        "requestedAt": datetime.now(UTC).isoformat(),
    }
    configure(env, CALENDAR_WEBHOOK_URL=NOWHERE, GOOGLE_API_RETRIES="0")
    sandbox.fault(method="PATCH", path=r"/events/", status=503, count=1)
    # The last delivery Pub/Sub makes before dead-lettering it.
    assert send(changes_client(), json.loads(json.dumps(change))) == 500
    assert read_booking(firestore, booking.booking_id)["reschedule"]["state"] == "accepted"

    configure(env, CALENDAR_WEBHOOK_URL=NOWHERE, RECONCILE_GRACE_MINUTES="0")
    first = run()
    second = run()

    assert first[0] == second[0] == 200
    assert (first[1]["reschedules_finished"], second[1]["reschedules_finished"]) == (1, 0)
    after = read_booking(firestore, booking.booking_id)
    assert after["startTime"] == target
    assert after["htmlLink"] == link
    assert after["reschedule"]["state"] == "done"
    assert int(sandbox.stats()["requests"].get("calendar.events.patch", 0)) == 2  # 503, then one
