"""calendar_maintenance through functions-framework's real app (CloudEvents in the Pub/Sub
shape from Cloud Scheduler), against the Firestore emulator and the Google sandbox: one
live watch channel, renewed before it expires; nothing paid left unscheduled."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from localstack.processes import cloud_event_headers, pubsub_envelope
from shared.core import signing
from shared.domain import cancellation, maintenance
from shared.stores import sync_state
from tests.support.calendar_sync import (
    admin_calendar,
    booking,
    configure,
    delete,
    move,
    scheduled_booking,
    webhook_lines,
)
from tests.support.scheduling import (
    activities,
    app_client,
    classcal_events,
    deliver,
    payment,
    records,
    sandbox_calls,
    wait_for,
    write_booking,
)

SOURCE = Path(__file__).resolve().parent.parent / "functions" / "calendar_maintenance" / "main.py"
NOWHERE = "http://127.0.0.1:9/calendar-webhook"  # loopback, nothing listens: never delivered


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


def _live() -> list[sync_state.Channel]:
    return sync_state.live_channels("primary")


# --- the watch channel ---------------------------------------------------------------------


def test_maintenance_creates_one_channel_then_keeps_it(run: Any, sandbox: Any) -> None:
    status, summary = run()

    assert status == 200
    assert summary["channels_created"] == 1
    assert summary["channels_renewed"] == 0
    [channel] = _live()
    assert channel.state == "active"
    assert channel.resource_id
    assert channel.address == NOWHERE
    [at_google] = sandbox.channels()
    assert at_google["id"] == channel.id
    # Only the token's digest is kept: Google's copy of the token matches it.
    assert channel.token_digest == signing.digest(at_google["token"])
    assert at_google["address"] == NOWHERE

    status, summary = run()

    assert status == 200
    assert summary["channels_created"] == summary["channels_renewed"] == 0
    assert [c.id for c in _live()] == [channel.id]
    assert sandbox_calls(sandbox, "calendar.events.watch") == 1
    # The summary never carries the channel's secret.
    assert at_google["token"] not in repr(summary)


@pytest.mark.slow
def test_renewal_creates_the_new_channel_then_stops_the_old_one(
    run: Any, webhook_server: Any, firestore: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    # Every channel is "about to expire": each run renews.
    configure(
        env,
        CALENDAR_WEBHOOK_URL=webhook_server.url,
        CHANNEL_TTL_HOURS="1",
        CHANNEL_RENEW_BEFORE_HOURS="2",
    )
    assert run()[0] == 200
    [old] = _live()

    status, summary = run()

    assert status == 200
    assert summary["channels_renewed"] == 1
    assert summary["channels_stopped"] == 1
    assert sandbox_calls(sandbox, "calendar.events.watch") == 2
    assert sandbox_calls(sandbox, "calendar.channels.stop") == 1
    [new] = _live()
    assert new.id != old.id
    assert sync_state.get_channel(old.id).state == "stopped"
    assert [c["id"] for c in sandbox.channels()] == [new.id]
    # Changes now reach the webhook through the new channel only.
    class_ = scheduled_booking(firestore)
    start, _ = move(admin_calendar(sandbox), class_.event_id, (class_.end - class_.start) * 2)
    wait_for(
        lambda: booking(firestore, class_.booking_id)["startTime"] == start,
        timeout=20,
        what="the booking to move",
    )
    # The webhook logs a notification once its sync is over, which may be a little after
    # the booking moved (a burst's last pass waits out SYNC_MIN_INTERVAL_SECONDS).
    wait_for(
        lambda: any(
            line.get("channel_id") == new.id and line.get("resource_state") == "exists"
            for line in webhook_lines(webhook_server.webhook)
        ),
        timeout=20,
        what="the webhook to log the new channel's notification",
    )
    received = [line for line in webhook_lines(webhook_server.webhook) if line.get("channel_id")]
    assert any(
        line["channel_id"] == new.id and line["resource_state"] == "exists" for line in received
    )
    old_lines = [line for line in received if line["channel_id"] == old.id]
    assert old_lines[0]["resource_state"] == "sync"
    # Google may still notify a stopped channel for a moment (the strict sandbox does, for
    # a second): those notifications are acknowledged and ignored, and sync nothing.
    for line in old_lines[1:]:
        assert (line.get("outcome"), line.get("reason")) == ("ignored", "channel_stopped"), line


def test_a_channel_already_gone_at_google_is_still_retired(
    run: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    configure(env, CHANNEL_TTL_HOURS="1", CHANNEL_RENEW_BEFORE_HOURS="2")
    run()
    [old] = _live()
    sandbox.fault("POST", r"/channels/stop", 404, "notFound")

    status, summary = run()

    assert status == 200
    assert summary["channels_stopped"] == 1
    assert sync_state.get_channel(old.id).state == "stopped"


def test_a_failed_watch_is_retried_and_leaves_no_live_channel(run: Any, sandbox: Any) -> None:
    sandbox.fault("POST", r"/events/watch", 503, "backendError", count=None)

    status, _ = run()

    assert status == 500  # Pub/Sub redelivers
    assert _live() == []
    sandbox.clear_faults()

    status, summary = run()

    assert status == 200
    assert summary["channels_created"] == 1


def test_without_a_webhook_url_maintenance_is_retried_and_says_why(
    run: Any, env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.delenv("CALENDAR_WEBHOOK_URL")
    configure(env)

    status, _ = run()

    assert status == 500
    assert any("CALENDAR_WEBHOOK_URL" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_concurrent_runs_make_one_channel(run: Any, sandbox: Any) -> None:
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def upkeep() -> None:
        try:
            barrier.wait()
            maintenance.ensure_channel(maintenance.MaintenanceResult())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=upkeep) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sandbox_calls(sandbox, "calendar.events.watch") == 1
    assert len(_live()) == 1


# --- reconciling bookings --------------------------------------------------------------------


def _dead_lettered(firestore: Any, sandbox: Any) -> Any:
    """A booking whose approved payment was delivered until Pub/Sub gave up on it."""
    class_ = write_booking(firestore)
    sandbox.fault("POST", r"/events$", 503, "backendError", count=None)
    client = app_client()
    assert [deliver(client, payment(class_.preference_id)) for _ in range(3)] == [500] * 3
    left = booking(firestore, class_.booking_id)
    assert left["paymentStatus"] == "approved"
    assert left["schedulingState"] == "waiting"
    assert "googleEventId" not in left
    return class_


def test_a_booking_left_by_a_dead_lettered_message_is_scheduled_exactly_once(
    run: Any, firestore: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    class_ = _dead_lettered(firestore, sandbox)
    sandbox.clear_faults()
    inserts = sandbox_calls(sandbox, "calendar.events.insert")

    # Within the grace period the booking is Pub/Sub's to retry, not maintenance's.
    status, summary = run()
    assert (status, summary["bookings_reconciled"]) == (200, 0)
    assert sandbox_calls(sandbox, "calendar.events.insert") == inserts

    configure(env, RECONCILE_GRACE_MINUTES="0")
    first = run()
    second = run()

    assert first[0] == second[0] == 200
    assert first[1]["bookings_reconciled"] == 1
    assert second[1]["bookings_reconciled"] == 0
    assert sandbox_calls(sandbox, "calendar.events.insert") == inserts + 1
    scheduled = booking(firestore, class_.booking_id)
    assert scheduled["status"] == "scheduled"
    assert scheduled["htmlLink"].startswith("https://meet.google.com/")
    assert [e["id"] for e in classcal_events(sandbox)] == [class_.event_id]
    assert len(activities(firestore)) == 1


def test_a_booking_still_failing_is_counted_with_its_reason(
    run: Any, firestore: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    configure(env, RECONCILE_GRACE_MINUTES="0")
    class_ = _dead_lettered(firestore, sandbox)

    status, summary = run()

    assert status == 200  # the booking waits for the next run; the tick is done
    assert summary["bookings_reconciled"] == 0
    assert summary["bookings_still_failing"] == 1
    assert summary["still_failing_reasons"] == {"google_unavailable": 1}
    assert booking(firestore, class_.booking_id)["schedulingState"] == "waiting"


def test_events_gone_from_the_calendar_are_caught_even_without_notifications(
    run: Any, firestore: Any, sandbox: Any
) -> None:
    deleted = scheduled_booking(firestore)
    missing = scheduled_booking(firestore)
    delete(admin_calendar(sandbox), deleted.event_id)
    firestore.collection("virtualClasses").document(missing.booking_id).update(
        {"googleEventId": "neverexisted0123"}
    )
    # The catch-up sync fails: only the per-booking check can notice.
    sandbox.fault("GET", r"/events$", 503, "backendError", count=None)

    status, summary = run()

    assert status == 200
    assert summary["step_errors"] == {"sync": "google_unavailable"}
    assert summary["events_checked"] == 2
    assert summary["bookings_cancelled"] == 1
    assert summary["events_missing"] == 1
    cancelled = booking(firestore, deleted.booking_id)
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancellationReason"] == "cancelled_in_google_calendar"
    flagged = booking(firestore, missing.booking_id)
    assert flagged["status"] == "scheduled"
    assert flagged["eventMissing"]["reason"] == "event_not_found"

    sandbox.clear_faults()
    status, summary = run()

    assert status == 200
    assert summary["events_missing"] == 0  # flagged once, not again


def test_a_cancellation_whose_event_removal_waited_is_finished(
    run: Any, firestore: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    from shared.core.errors import GoogleUnavailable

    class_ = scheduled_booking(firestore)
    sandbox.fault("DELETE", r"/events/", 503, "backendError", count=None)
    with pytest.raises(GoogleUnavailable):
        cancellation.cancel_booking(class_.booking_id, reason="refunded")
    assert booking(firestore, class_.booking_id)["eventDeleted"] is False
    sandbox.clear_faults()
    configure(env, RECONCILE_GRACE_MINUTES="0")

    status, summary = run()

    assert status == 200
    assert summary["cancellations_finished"] == 1
    finished = booking(firestore, class_.booking_id)
    assert finished["eventDeleted"] is True
    assert finished["cancellationReason"] == "refunded"
    [event] = classcal_events(sandbox)
    assert event["status"] == "cancelled"
    assert run()[1]["cancellations_finished"] == 0


def test_bookings_with_odd_fields_do_not_stop_the_run(
    run: Any, firestore: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    configure(env, RECONCILE_GRACE_MINUTES="0")
    # Paid and left waiting, then found with fields no booking page writes: a student id
    # Firestore cannot use as a document id, a time its calendar cannot hold.
    odd_student = _dead_lettered(firestore, sandbox)
    firestore.document(f"virtualClasses/{odd_student.booking_id}").update({"bookedById": "__x__"})
    odd_time = _dead_lettered(firestore, sandbox)
    firestore.document(f"virtualClasses/{odd_time.booking_id}").update(
        {"startTime": "9999-12-31T23:00:00-05:00"}
    )
    sandbox.clear_faults()

    status, summary = run()

    assert status == 200
    assert summary["bookings_reconciled"] == 1
    assert summary["still_failing_reasons"] == {"bad_times": 1}
    assert "step_errors" not in summary or not summary["step_errors"]
    assert booking(firestore, odd_student.booking_id)["status"] == "scheduled"  # no attendee
    assert booking(firestore, odd_time.booking_id)["schedulingState"] == "failed"


def test_the_event_check_walks_past_bookings_without_an_event_id(
    run: Any, firestore: Any, env: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from tests.support.scheduling import next_class_start

    env.setattr(maintenance, "MAX_EVENT_CHECKS", 2)
    first = next_class_start()
    # Checked in end-time order: a scheduled booking with no event id, one fine, then one
    # whose event does not exist. The first must not make the slice look like the end.
    no_event = write_booking(firestore, start=first, status="scheduled")
    scheduled_booking(firestore, start=first + timedelta(hours=2))
    missing = scheduled_booking(firestore, start=first + timedelta(hours=4))
    firestore.document(f"virtualClasses/{missing.booking_id}").update(
        {"googleEventId": "neverexisted0123"}
    )

    first_run = run()[1]
    second_run = run()[1]

    assert "googleEventId" not in booking(firestore, no_event.booking_id)
    assert (first_run["events_checked"], first_run["events_missing"]) == (1, 0)
    assert (second_run["events_checked"], second_run["events_missing"]) == (1, 1)
    assert booking(firestore, missing.booking_id)["eventMissing"]["reason"] == "event_not_found"
