"""create_event through functions-framework's real app, against the Firestore emulator and
the Google sandbox: one approved payment becomes exactly one Calendar event with a Meet
link, whatever is delivered twice, concurrently, or fails on the way."""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.core.errors import InvalidBooking
from shared.domain import event_shape, scheduling
from shared.google import calendar
from tests.support import retries
from tests.support.mercadopago import configure_mercadopago
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
    write_booking,
)

SEED_FIELDS = {
    "googleEventId",
    "accessCode",
    "startTime",
    "endTime",
    "maxParticipants",
    "currentParticipants",
    "classPrice",
    "htmlLink",
    "status",
    "summary",
    "learningFocus",
    "preferenceId",
    "hostType",
    "classType",
}
MEET_URI = re.compile(r"^https://meet\.google\.com/[a-z]{3}-[a-z]{4}-[a-z]{3}$")
ACCESS_CODE = re.compile(r"^[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{8}$")


@pytest.fixture
def client(connected: Any) -> Any:
    return app_client()


def _live(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("status") != "cancelled"]


# --- identifiers -------------------------------------------------------------------------


def test_the_event_id_is_base32hex_and_stable_per_booking() -> None:
    first = event_shape.event_id_for("class-1")

    assert re.fullmatch(r"[0-9a-v]{52}", first)
    assert event_shape.event_id_for("class-1") == first
    assert event_shape.event_id_for("class-2") != first
    assert event_shape.conference_request_id("class-1") == event_shape.conference_request_id(
        "class-1"
    )


def test_access_codes_come_from_the_unambiguous_alphabet() -> None:
    codes = {scheduling.new_access_code() for _ in range(200)}

    assert all(ACCESS_CODE.match(code) for code in codes)
    assert len(codes) == 200


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-15T10:00:00-03:00", datetime(2026, 3, 15, 13, tzinfo=UTC)),
        ("2026-03-15T13:00:00Z", datetime(2026, 3, 15, 13, tzinfo=UTC)),
        (datetime(2026, 3, 15, 13, tzinfo=UTC), datetime(2026, 3, 15, 13, tzinfo=UTC)),
    ],
)
def test_booking_times_are_timestamps_or_rfc3339(value: Any, expected: datetime) -> None:
    assert event_shape.parse_time(value, "startTime") == expected


@pytest.mark.parametrize(
    "value", [None, "", "2026-03-15T10:00:00", "tomorrow", 1773580800, "2026-03-15"]
)
def test_a_booking_time_without_an_offset_or_unparseable_is_invalid(value: Any) -> None:
    with pytest.raises(InvalidBooking):
        event_shape.parse_time(value, "startTime")


# --- the happy path ------------------------------------------------------------------------


def test_an_approved_payment_gives_one_event_with_a_meet_link_and_the_seed_booking(
    client: Any,
    firestore: Any,
    sandbox: Any,
    env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    booking = write_booking(firestore)
    caplog.set_level(logging.INFO)
    # Google's answer to the insert is final here (by default the sandbox keeps the
    # conference pending for one read, as Google may: see the conference tests below).
    sandbox.set_conference(pending_reads=0)
    # The price comes only from a payment classcal reads from MercadoPago itself.
    mercadopago = configure_mercadopago(env, sandbox.url)
    paid = mercadopago.create_payment(
        amount=16500, currency="ARS", external_reference=booking.booking_id
    )

    status = deliver(
        client,
        payment(booking.preference_id, paymentId=str(paid["id"]), amount=16500, currency="ARS"),
    )

    assert status == 200
    events = classcal_events(sandbox)
    assert len(events) == 1
    event = events[0]
    stored = read_booking(firestore, booking.booking_id)
    assert stored.keys() >= SEED_FIELDS
    assert stored["status"] == "scheduled"
    assert stored["googleEventId"] == event["id"] == booking.event_id
    assert MEET_URI.match(stored["htmlLink"])
    assert stored["htmlLink"] == event["conferenceData"]["entryPoints"][0]["uri"]
    assert stored["calendarLink"] == event["htmlLink"]
    assert ACCESS_CODE.match(stored["accessCode"])
    assert stored["startTime"] == booking.start
    assert stored["endTime"] == booking.end
    assert stored["currentParticipants"] == 1
    assert stored["maxParticipants"] == 1
    assert stored["classPrice"] == 16500  # what was paid, never a made-up price
    assert stored["summary"] == "Clase de Inglés. La clase sera individual con x1 participantes"
    assert stored["learningFocus"] == "conversation"
    assert stored["preferenceId"] == booking.preference_id
    assert stored["hostType"] == "anfitrion"
    assert stored["classType"] == "individual"
    assert stored["paymentId"] == str(paid["id"])
    assert stored["paymentStatus"] == "approved"
    assert isinstance(stored["scheduledAt"], datetime)
    assert stored["schedulingState"] == "done"
    assert "schedulingLeaseOwner" not in stored
    assert activities(firestore) == [
        {
            "userId": booking.student_id,
            "classId": booking.booking_id,
            "taskId": None,
            "rol": "anfitrion",
            "completed": False,
        }
    ]
    done = records(caplog, outcome="scheduled", booking_id=booking.booking_id)
    assert done
    assert done[-1].preference_id == booking.preference_id
    assert done[-1].calendar_calls == {"events.insert": 1}
    assert all(stored["accessCode"] not in r.getMessage() for r in caplog.records)
    assert all(stored["accessCode"] not in str(r.__dict__) for r in caplog.records)


def test_the_event_follows_the_configured_zone_attendee_and_texts(
    env: pytest.MonkeyPatch, client: Any, firestore: Any, sandbox: Any
) -> None:
    configure(
        env,
        CALENDAR_TIMEZONE="America/Argentina/Buenos_Aires",
        EVENT_DESCRIPTION="Clase {classType} x{participants}: {learningFocus}",
        SEND_UPDATES="none",
    )
    booking = write_booking(firestore, classType="grupal", maxParticipants=4)

    assert deliver(client, payment(booking.preference_id)) == 200

    event = classcal_events(sandbox)[0]
    zone = ZoneInfo("America/Argentina/Buenos_Aires")
    assert event["start"] == {
        "dateTime": booking.start.astimezone(zone).isoformat(),
        "timeZone": "America/Argentina/Buenos_Aires",
    }
    assert event["end"]["dateTime"] == booking.end.astimezone(zone).isoformat()
    assert event["transparency"] == "opaque"
    assert [a["email"] for a in event["attendees"]] == [STUDENT_EMAIL]
    assert event["extendedProperties"]["private"] == {"classcalBookingId": booking.booking_id}
    assert event["summary"] == "Clase de Inglés"
    assert event["description"] == "Clase grupal x4: conversation"
    assert event["conferenceData"]["createRequest"]["requestId"] == (
        event_shape.conference_request_id(booking.booking_id)
    )
    assert sandbox.stats()["send_updates"] == {"none": 1}


def test_the_price_is_the_bookings_own_when_the_payment_has_no_amount(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = write_booking(firestore, classPrice=12000)

    assert deliver(client, payment(booking.preference_id)) == 200

    assert read_booking(firestore, booking.booking_id)["classPrice"] == 12000


def test_booking_times_stored_as_rfc3339_strings_are_scheduled(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    booking = write_booking(
        firestore,
        startTime=start.astimezone(ZoneInfo("America/Argentina/Buenos_Aires")).isoformat(),
        endTime=(start + timedelta(minutes=45)).isoformat().replace("+00:00", "Z"),
    )

    assert deliver(client, payment(booking.preference_id)) == 200

    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "scheduled"
    assert stored["startTime"] == start
    assert stored["endTime"] == start + timedelta(minutes=45)


def test_a_student_without_an_email_still_gets_the_class(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = write_booking(firestore, student_email=None)

    assert deliver(client, payment(booking.preference_id)) == 200

    assert read_booking(firestore, booking.booking_id)["status"] == "scheduled"
    assert "attendees" not in classcal_events(sandbox)[0]


# Addresses classcal's own check lets through (one @, no spaces, a dot after it) but
# Google refuses; "ana maria@..." never reaches Google (no_usable_email).
@pytest.mark.parametrize("email", ["ana(school)@example.com", "ana..b@example.com"])
def test_an_address_google_refuses_still_schedules_the_class_without_the_attendee(
    client: Any, firestore: Any, sandbox: Any, caplog: pytest.LogCaptureFixture, email: str
) -> None:
    booking = write_booking(firestore, student_email=email)
    caplog.set_level(logging.INFO)

    assert deliver(client, payment(booking.preference_id)) == 200

    stored = read_booking(firestore, booking.booking_id)
    [event] = classcal_events(sandbox)
    assert stored["status"] == "scheduled"
    assert MEET_URI.match(stored["htmlLink"])
    assert stored["studentInvited"] is False
    assert stored["studentInviteReason"] == "attendee_refused_by_google"
    assert event["id"] == booking.event_id  # the same deterministic id, made once
    assert "attendees" not in event
    assert sandbox_calls(sandbox, "calendar.events.insert") == 2  # refused, then made
    [warning] = records(caplog, reason="attendee_refused_by_google")
    assert warning.levelno == logging.WARNING
    assert warning.booking_id == booking.booking_id
    assert email not in caplog.text


def test_a_student_who_was_invited_is_recorded_as_invited(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = write_booking(firestore)

    assert deliver(client, payment(booking.preference_id)) == 200

    stored = read_booking(firestore, booking.booking_id)
    assert stored["studentInvited"] is True
    assert "studentInviteReason" not in stored


def test_a_student_without_an_email_is_recorded_as_not_invited(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = write_booking(firestore, student_email=None)

    assert deliver(client, payment(booking.preference_id)) == 200

    stored = read_booking(firestore, booking.booking_id)
    assert stored["studentInvited"] is False
    assert stored["studentInviteReason"] == "no_usable_email"


# --- exactly once ----------------------------------------------------------------------------


def test_five_sequential_deliveries_give_one_event_one_code_one_activity(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = write_booking(firestore)
    message = payment(booking.preference_id, paymentId="pay-1")

    statuses = [deliver(client, message) for _ in range(5)]
    codes = {read_booking(firestore, booking.booking_id)["accessCode"]}

    assert statuses == [200] * 5
    assert sandbox_calls(sandbox, "calendar.events.insert") == 1
    assert len(classcal_events(sandbox)) == 1
    assert len(codes) == 1
    assert len(activities(firestore)) == 1


@pytest.mark.slow
def test_five_concurrent_deliveries_give_one_event_one_code_one_activity(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = write_booking(firestore)
    message = payment(booking.preference_id, paymentId="pay-1")
    barrier = threading.Barrier(5)
    statuses: list[int] = []

    def one_delivery() -> None:
        barrier.wait()
        statuses.append(deliver(app_client(), message))

    threads = [threading.Thread(target=one_delivery) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    code_after_race = read_booking(firestore, booking.booking_id).get("accessCode")
    # Pub/Sub redelivers what was not acknowledged (the ones that found the booking busy).
    for _ in range(statuses.count(500)):
        deliver_until_acked(client, message)

    assert len(statuses) == 5
    assert statuses.count(200) >= 1
    assert set(statuses) <= {200, 500}
    assert sandbox_calls(sandbox, "calendar.events.insert") == 1
    assert len(classcal_events(sandbox)) == 1
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "scheduled"
    assert stored["accessCode"] == code_after_race
    assert len(activities(firestore)) == 1


def test_a_booking_held_by_another_delivery_is_retried_not_touched(
    client: Any, firestore: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    lease_until = datetime.now(UTC) + timedelta(minutes=2)
    booking = write_booking(
        firestore, schedulingLeaseOwner="other-delivery", schedulingLeaseUntil=lease_until
    )
    caplog.set_level(logging.INFO)

    status = deliver(client, payment(booking.preference_id))

    assert status == 500  # Pub/Sub redelivers later
    assert records(caplog, outcome="retry", reason="booking_busy")
    stored = read_booking(firestore, booking.booking_id)
    assert stored["schedulingLeaseOwner"] == "other-delivery"
    assert "schedulingState" not in stored
    assert sandbox_calls(sandbox, "calendar.events.insert") == 0


def test_an_expired_lease_is_taken_over(client: Any, firestore: Any, sandbox: Any) -> None:
    booking = write_booking(
        firestore,
        schedulingLeaseOwner="a-delivery-that-died",
        schedulingLeaseUntil=datetime.now(UTC) - timedelta(seconds=1),
    )

    assert deliver(client, payment(booking.preference_id)) == 200

    assert read_booking(firestore, booking.booking_id)["status"] == "scheduled"


def test_a_lost_insert_answer_is_followed_by_409_and_the_same_event(
    client: Any, firestore: Any, sandbox: Any, google_retries: int
) -> None:
    booking = write_booking(firestore)
    # Google makes the event but the answer is a 503: the client's retry gets 409.
    sandbox.fault(method="POST", path=r"/events$", status=503, commit=True)

    assert deliver(client, payment(booking.preference_id)) == 200

    assert sandbox_calls(sandbox, "calendar.events.insert") == 2
    assert len(classcal_events(sandbox)) == 1
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "scheduled"
    assert MEET_URI.match(stored["htmlLink"])
    assert len(activities(firestore)) == 1


def test_an_event_made_by_an_earlier_attempt_is_reused(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = write_booking(firestore)
    # An attempt that died after its insert and before writing the booking.
    body = event_shape.event_body(
        booking.booking_id,
        read_booking(firestore, booking.booking_id),
        booking.start,
        booking.end,
        STUDENT_EMAIL,
        scheduling.get_config(),
    )
    made = calendar.insert_event(body, send_updates="all")

    assert deliver(client, payment(booking.preference_id)) == 200

    assert len(classcal_events(sandbox)) == 1
    assert read_booking(firestore, booking.booking_id)["googleEventId"] == made["id"]


def test_an_event_deleted_in_google_before_the_booking_was_written_is_not_recreated(
    client: Any, firestore: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    booking = write_booking(firestore)
    body = event_shape.event_body(
        booking.booking_id,
        read_booking(firestore, booking.booking_id),
        booking.start,
        booking.end,
        None,
        scheduling.get_config(),
    )
    calendar.insert_event(body, send_updates="none")
    calendar.delete_event(booking.event_id, send_updates="none")  # the admin deleted it
    caplog.set_level(logging.INFO)

    status = deliver(client, payment(booking.preference_id))

    assert status == 200  # acknowledged: a retry cannot bring the id back
    assert _live(classcal_events(sandbox)) == []
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "pending"
    assert stored["schedulingState"] == "failed"
    assert stored["schedulingReason"] == "event_deleted"
    assert "deleted in Google Calendar" in stored["schedulingMessage"]
    assert records(caplog, outcome="rejected", reason="event_deleted")


# --- Google failures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [(429, "rateLimitExceeded"), (403, "rateLimitExceeded"), (503, "backendError")],
)
def test_a_throttled_or_failing_insert_is_retried_and_succeeds(
    client: Any, firestore: Any, sandbox: Any, status: int, reason: str, google_retries: int
) -> None:
    booking = write_booking(firestore)
    sandbox.fault(method="POST", path=r"/events$", status=status, reason=reason, count=1)

    assert deliver(client, payment(booking.preference_id)) == 200

    assert sandbox_calls(sandbox, "calendar.events.insert") == 2
    assert len(classcal_events(sandbox)) == 1
    assert read_booking(firestore, booking.booking_id)["status"] == "scheduled"


def test_google_failing_past_the_clients_retries_leaves_the_booking_waiting_then_retried(
    env: pytest.MonkeyPatch, client: Any, firestore: Any, sandbox: Any
) -> None:
    retries.quick(env, 1)
    booking = write_booking(firestore)
    sandbox.fault(method="POST", path=r"/events$", status=503, reason="backendError", count=2)
    message = payment(booking.preference_id)

    first = deliver(client, message)
    waiting = read_booking(firestore, booking.booking_id)
    second = deliver(client, message)

    assert first == 500
    assert waiting["status"] == "pending"
    assert waiting["schedulingState"] == "waiting"
    assert waiting["schedulingReason"] == "google_unavailable"
    assert "retried automatically" in waiting["schedulingMessage"]
    assert "schedulingLeaseOwner" not in waiting  # released: the redelivery need not wait
    assert second == 200
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "scheduled"
    assert "schedulingReason" not in stored
    assert stored["schedulingAttempts"] == 2


def test_a_conference_pending_for_several_reads_ends_with_the_link(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = write_booking(firestore)
    sandbox.set_conference(pending_reads=3, outcome="success")

    assert deliver(client, payment(booking.preference_id)) == 200

    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "scheduled"
    assert MEET_URI.match(stored["htmlLink"])
    assert sandbox_calls(sandbox, "calendar.events.get") >= 2


def test_a_conference_still_pending_is_retried_and_the_booking_says_so(
    env: pytest.MonkeyPatch, client: Any, firestore: Any, sandbox: Any
) -> None:
    configure(env, CONFERENCE_POLL_DELAYS="0.01,0.01")
    booking = write_booking(firestore)
    sandbox.set_conference(pending_reads=5, outcome="success")
    message = payment(booking.preference_id)

    first = deliver(client, message)
    waiting = read_booking(firestore, booking.booking_id)
    attempts = 1 + deliver_until_acked(client, message)

    assert first == 500
    assert waiting["schedulingState"] == "waiting"
    assert waiting["schedulingReason"] == "conference_pending"
    assert waiting["googleEventId"] == booking.event_id
    assert "htmlLink" not in waiting
    assert attempts >= 2
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "scheduled"
    assert MEET_URI.match(stored["htmlLink"])
    assert sandbox_calls(sandbox, "calendar.events.insert") == attempts
    assert len(classcal_events(sandbox)) == 1


def test_a_failed_conference_is_recorded_and_alerted(
    client: Any, firestore: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    booking = write_booking(firestore)
    sandbox.set_conference(pending_reads=1, outcome="failure")
    caplog.set_level(logging.INFO)

    status = deliver(client, payment(booking.preference_id))

    assert status == 200  # acknowledged: the same request would fail the same way
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "pending"
    assert stored["schedulingState"] == "failed"
    assert stored["schedulingReason"] == "conference_failed"
    assert stored["googleEventId"] == booking.event_id  # the event exists
    assert stored["calendarLink"]
    assert "htmlLink" not in stored  # never an empty Meet link
    assert "Meet" in stored["schedulingMessage"]
    alerts = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any(getattr(r, "reason", None) == "conference_failed" for r in alerts)
    assert len(classcal_events(sandbox)) == 1
    assert activities(firestore) == []


def test_a_meet_link_added_by_hand_after_a_failed_conference_completes_the_booking(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = write_booking(firestore)
    sandbox.set_conference(pending_reads=0, outcome="failure")
    message = payment(booking.preference_id)
    assert deliver(client, message) == 200
    # The admin adds Meet to the event in Google Calendar.
    sandbox.set_conference(pending_reads=0, outcome="success")
    calendar.execute(
        lambda s: s.events().patch(
            calendarId="primary",
            eventId=booking.event_id,
            conferenceDataVersion=1,
            body={
                "conferenceData": {
                    "createRequest": {
                        "requestId": "added-by-the-admin",
                        "conferenceSolutionKey": {"type": "hangoutsMeet"},
                    }
                }
            },
        ),
        what="events.patch",
    )

    status = deliver(client, message)

    assert status == 200
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "scheduled"
    assert MEET_URI.match(stored["htmlLink"])
    assert len(classcal_events(sandbox)) == 1
    assert len(activities(firestore)) == 1


# --- bookings that cannot be scheduled ------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"startTime": None}, "missing_time"),
        ({"endTime": None}, "missing_time"),
        ({"endTime": "next tuesday"}, "invalid_booking"),
        ({"startTime": "2030-01-01T10:00:00", "endTime": "2030-01-01T11:00:00"}, "invalid_booking"),
        ({"minutes": 0}, "bad_times"),
        ({"minutes": -30}, "bad_times"),
        ({"classType": None}, "missing_class_type"),
    ],
    ids=["no-start", "no-end", "bad-end", "no-offset", "zero-length", "end-before", "no-type"],
)
def test_a_booking_that_cannot_be_scheduled_is_recorded_and_acknowledged(
    client: Any,
    firestore: Any,
    sandbox: Any,
    caplog: pytest.LogCaptureFixture,
    fields: dict[str, Any],
    reason: str,
) -> None:
    minutes = fields.pop("minutes", 60)
    booking = write_booking(firestore, minutes=minutes, **fields)
    caplog.set_level(logging.INFO)

    status = deliver(client, payment(booking.preference_id, paymentId="pay-3"))

    assert status == 200
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "pending"
    assert stored["schedulingState"] == "failed"
    assert stored["schedulingReason"] == reason
    assert stored["paymentStatus"] == "approved"  # the payment is still on record
    assert records(caplog, outcome="rejected", reason=reason)
    assert sandbox_calls(sandbox, "calendar.events.insert") == 0


def test_a_class_past_the_grace_period_is_not_scheduled(
    env: pytest.MonkeyPatch, client: Any, firestore: Any, sandbox: Any
) -> None:
    configure(env, PAST_GRACE_MINUTES="30")
    late = write_booking(firestore, start=datetime.now(UTC) - timedelta(minutes=31))
    just_started = write_booking(firestore, start=datetime.now(UTC) - timedelta(minutes=20))

    assert deliver(client, payment(late.preference_id)) == 200
    assert deliver(client, payment(just_started.preference_id)) == 200

    assert read_booking(firestore, late.booking_id)["schedulingReason"] == "class_in_past"
    assert read_booking(firestore, just_started.booking_id)["status"] == "scheduled"
    assert sandbox_calls(sandbox, "calendar.events.insert") == 1


def test_a_bad_description_template_is_a_configuration_error_and_retried(
    env: pytest.MonkeyPatch, client: Any, firestore: Any, sandbox: Any
) -> None:
    configure(env, EVENT_DESCRIPTION="Clase {teacher}")
    booking = write_booking(firestore)

    status = deliver(client, payment(booking.preference_id))

    assert status == 500  # a redeploy fixes it; the message must be kept
    stored = read_booking(firestore, booking.booking_id)
    assert stored["schedulingState"] == "waiting"
    assert "EVENT_DESCRIPTION" in stored["schedulingMessage"]


@pytest.mark.slow
def test_an_unreachable_database_is_retried(
    env: pytest.MonkeyPatch, connected: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from localstack import processes
    from shared.google import clients

    env.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{processes.free_port()}")
    clients.reset_clients()
    caplog.set_level(logging.INFO)
    started = time.monotonic()

    status = deliver(app_client(), payment("162275027-any"))

    assert status == 500
    assert records(caplog, outcome="retry", reason="store_unavailable")
    assert time.monotonic() - started < 30


def test_transaction_contention_is_transient_not_a_bug() -> None:
    # What firestore.transactional raises once every commit attempt was Aborted (seen
    # under load against the emulator: "Transaction lock timeout"): a ValueError whose
    # cause is the last Aborted. Retrying later resolves contention, so it is transient.
    from google.api_core import exceptions

    from shared.core.errors import StoreUnavailable
    from shared.stores import bookings

    with pytest.raises(StoreUnavailable, match="contention"), bookings._store_errors("claim"):
        raise ValueError("Failed to commit transaction in 5 attempts.") from exceptions.Aborted(
            "Transaction lock timeout."
        )
    # Any other ValueError is a bug and stays one.
    with pytest.raises(ValueError, match="bad"), bookings._store_errors("claim"):
        raise ValueError("bad")


def test_a_stored_grant_without_calendar_access_waits_for_the_admin(
    sandbox: Any, firestore: Any, client: Any
) -> None:
    from localstack.constants import ADMIN_EMAIL, CLIENT_ID
    from shared.google import tokens

    # Google answers invalid_scope to a refresh asking for calendar access the grant lacks:
    # only a new connection fixes that, as with a revoked grant.
    narrow = sandbox.issue_token(ADMIN_EMAIL, CLIENT_ID, "openid email")
    tokens.store_refresh_token(narrow["refresh_token"])
    booking = write_booking(firestore)

    status = deliver(client, payment(booking.preference_id))

    assert status == 500
    assert read_booking(firestore, booking.booking_id)["schedulingReason"] == (
        "admin_reconnect_required"
    )
