"""join_class and guest_invitations through functions-framework's real apps, against the
Firestore emulator and the Google sandbox (whose OAuth signs the students' ID tokens,
verified by google-auth): guests take seats exactly once and become attendees of the
class's Calendar event exactly once, in order, whatever fails on the way."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.core.config import get_config
from shared.domain import group_classes
from tests.support.group_classes import (
    attendee_emails,
    call,
    event,
    everything,
    guest_activities,
    guests_app,
    id_token,
    join_app,
    nudge,
    scheduled_group_class,
    stored_group_class,
    student,
)
from tests.support.scheduling import (
    STUDENT_EMAIL,
    app_client,
    configure,
    deliver,
    payment,
    read_booking,
    sandbox_calls,
)


@pytest.fixture
def client(connected: Any) -> Any:
    return join_app()


@pytest.fixture
def inviter(connected: Any) -> Any:
    return guests_app()


def _patches(sandbox: Any, event_id: str) -> list[dict[str, Any]]:
    log = event(sandbox, event_id)["sandbox"]["sendUpdates"]
    return [entry for entry in log if entry["method"] == "calendar.events.patch"]


# --- joining -----------------------------------------------------------------------------


def test_a_guest_joins_and_becomes_an_attendee_of_the_event(
    client: Any, inviter: Any, firestore: Any, sandbox: Any
) -> None:
    group = scheduled_group_class(firestore, seats=4)
    ana = student(firestore, sandbox, "ana")
    before = event(sandbox, group.event_id)

    response = call(client, ana.token, {"accessCode": f"  {group.code.lower()} "})

    assert response.status_code == 200, response.get_json()
    booking = read_booking(firestore, group.booking_id)
    assert response.get_json() == {
        "classId": group.booking_id,
        "startTime": booking["startTime"].isoformat().replace("+00:00", "Z"),
        "endTime": booking["endTime"].isoformat().replace("+00:00", "Z"),
        "htmlLink": booking["htmlLink"],
        "currentParticipants": 2,
        "maxParticipants": 4,
    }
    assert booking["participantsIds"] == [ana.user_id]
    assert booking["currentParticipants"] == 2
    assert booking["guestInvitations"][ana.user_id]["state"] == "waiting"
    assert booking["guestSyncPending"] is True
    [activity] = guest_activities(firestore, group.booking_id).values()
    assert activity == {
        "userId": ana.user_id,
        "classId": group.booking_id,
        "taskId": None,
        "rol": "invitado",
        "completed": False,
        "status": "joined",
        "joinedAt": activity["joinedAt"],
    }
    # The public function made no Calendar call: the event is untouched so far.
    assert attendee_emails(sandbox, group.event_id) == [STUDENT_EMAIL]

    assert nudge(inviter, group.booking_id) == 200

    after = event(sandbox, group.event_id)
    assert attendee_emails(sandbox, group.event_id) == [STUDENT_EMAIL, ana.email]
    assert after["conferenceData"] == before["conferenceData"]
    assert after["hangoutLink"] == before["hangoutLink"]
    [patch] = _patches(sandbox, group.event_id)
    assert patch["sendUpdates"] == "all"
    assert patch["attendees"] == [STUDENT_EMAIL, ana.email]
    booking = read_booking(firestore, group.booking_id)
    assert booking["guestInvitations"][ana.user_id]["state"] == "invited"
    assert booking["guestSyncPending"] is False


def test_other_attendees_and_their_answers_are_kept(
    client: Any, inviter: Any, firestore: Any, sandbox: Any
) -> None:
    from tests.support.calendar_sync import admin_calendar

    group = scheduled_group_class(firestore, seats=4)
    admin = admin_calendar(sandbox)
    # The admin added a co-teacher by hand, who accepted; the host accepted too.
    admin.events().patch(
        calendarId="primary",
        eventId=group.event_id,
        body={
            "attendees": [
                {"email": STUDENT_EMAIL, "responseStatus": "accepted"},
                {"email": "coteacher@school.test", "responseStatus": "accepted"},
            ]
        },
    ).execute()
    ana = student(firestore, sandbox, "ana")

    assert call(client, ana.token, {"accessCode": group.code}).status_code == 200
    assert nudge(inviter, group.booking_id) == 200
    assert attendee_emails(sandbox, group.event_id) == [
        STUDENT_EMAIL,
        "coteacher@school.test",
        ana.email,
    ]
    assert call(client, ana.token, {"accessCode": group.code}, method="DELETE").status_code == 200
    assert nudge(inviter, group.booking_id) == 200

    kept = [(a["email"], a["responseStatus"]) for a in event(sandbox, group.event_id)["attendees"]]
    assert kept == [(STUDENT_EMAIL, "accepted"), ("coteacher@school.test", "accepted")]


def test_joining_again_or_the_host_joining_changes_nothing(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    group = stored_group_class(firestore, seats=3)
    ana = student(firestore, sandbox, "ana")
    first = call(client, ana.token, {"accessCode": group.code})
    state = everything(firestore)

    again = call(client, ana.token, {"accessCode": group.code})
    firestore.collection("users").document(group.host_id).set({"email": "host@example.test"})
    host_token = id_token(sandbox, "host@example.test")
    state = everything(firestore)
    host = call(client, host_token, {"accessCode": group.code})

    assert first.status_code == again.status_code == host.status_code == 200
    assert again.get_json() == first.get_json() == host.get_json()
    assert first.get_json()["currentParticipants"] == 2
    assert everything(firestore) == state
    refused = call(client, host_token, {"accessCode": group.code}, method="DELETE")
    assert refused.status_code == 409
    assert refused.get_json()["reason"] == "host"
    assert everything(firestore) == state


def test_an_email_is_matched_without_case(client: Any, firestore: Any, sandbox: Any) -> None:
    group = stored_group_class(firestore)
    ana = student(firestore, sandbox, "ana", email="Ana.Perez@Students.example.test")

    response = call(client, ana.token, {"accessCode": group.code})

    assert response.status_code == 200, response.get_json()
    assert read_booking(firestore, group.booking_id)["participantsIds"] == [ana.user_id]
    assert "Ana.Perez@Students.example.test" in group_classes.email_spellings(
        "ana.perez@students.example.test"
    )
    assert len(group_classes.email_spellings("a.b@c.d")) <= 30


# --- refusals, each changing nothing -------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'"ABCDEFGH"', {}, {"accessCode": 12345678}, {"accessCode": " "}],
)
def test_a_body_without_a_string_access_code_is_400(
    client: Any, firestore: Any, sandbox: Any, body: Any
) -> None:
    group = stored_group_class(firestore)
    ana = student(firestore, sandbox, "ana")
    state = everything(firestore)

    response = call(client, ana.token, body)

    assert response.status_code == 400
    assert response.get_json()["reason"] == "invalid_body"
    assert everything(firestore) == state
    assert group.code not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "knobs",
    [
        None,  # no token at all
        {"exp_offset": -7200},  # expired
        {"bad_signature": True},  # forged
        {"aud": "someone-else.apps.googleusercontent.com"},
        {"iss": "https://evil.example"},
    ],
)
def test_a_missing_expired_or_forged_token_is_401(
    client: Any, firestore: Any, sandbox: Any, knobs: dict[str, Any] | None
) -> None:
    group = stored_group_class(firestore)
    firestore.collection("users").document("ana").set({"email": "ana@example.test"})
    token = None
    if knobs is not None:
        sandbox.set_oauth(id_token=knobs)
        token = id_token(sandbox, "ana@example.test")
        sandbox.set_oauth()
    state = everything(firestore)

    response = call(client, token, {"accessCode": group.code})

    assert response.status_code == 401
    assert response.get_json()["reason"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert everything(firestore) == state


def test_a_malformed_authorization_header_is_401(client: Any, firestore: Any) -> None:
    group = stored_group_class(firestore)
    for header in ("Basic dXNlcjpwdw==", "Bearer", "Bearer not-a-jwt", "Bearer a.b.c"):
        response = client.post(
            "/", json={"accessCode": group.code}, headers={"Authorization": header}
        )
        assert response.status_code == 401, header
        assert response.get_json()["reason"] == "unauthenticated"


def test_an_unverified_email_or_an_unknown_user_is_403(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    group = stored_group_class(firestore)
    firestore.collection("users").document("ana").set({"email": "ana@example.test"})
    sandbox.set_oauth(id_token={"email_verified": False})
    unverified = id_token(sandbox, "ana@example.test")
    sandbox.set_oauth()
    stranger = id_token(sandbox, "stranger@example.test")
    state = everything(firestore)

    first = call(client, unverified, {"accessCode": group.code})
    second = call(client, stranger, {"accessCode": group.code})

    assert (first.status_code, first.get_json()["reason"]) == (403, "email_not_verified")
    assert (second.status_code, second.get_json()["reason"]) == (403, "unknown_user")
    assert everything(firestore) == state


def test_an_unknown_code_is_404_and_says_nothing_of_how_close_it_was(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    group = stored_group_class(firestore)
    ana = student(firestore, sandbox, "ana")
    state = everything(firestore)
    near = group.code[:-1] + ("A" if group.code[-1] != "A" else "B")

    answers = [call(client, ana.token, {"accessCode": c}) for c in (near, "ZZZZZZZZ", "x" * 500)]

    assert {a.status_code for a in answers} == {404}
    assert len({a.get_data() for a in answers}) == 1
    assert answers[0].get_json()["reason"] == "unknown_code"
    assert everything(firestore) == state


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ({"seats": 2, "guests": ["someone"]}, "full"),
        ({"start": datetime.now(UTC) - timedelta(minutes=5)}, "started"),
        ({"status": "cancelled"}, "cancelled"),
        ({"class_type": "individual", "seats": 1}, "not_group"),
    ],
)
def test_a_class_that_cannot_take_a_guest_is_409(
    client: Any, firestore: Any, sandbox: Any, setup: dict[str, Any], reason: str
) -> None:
    group = stored_group_class(firestore, **setup)
    ana = student(firestore, sandbox, "ana")
    state = everything(firestore)

    response = call(client, ana.token, {"accessCode": group.code})

    assert response.status_code == 409
    assert response.get_json()["reason"] == reason
    assert everything(firestore) == state


def test_ten_wrong_codes_in_an_hour_are_followed_by_429(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    group = stored_group_class(firestore)
    ana = student(firestore, sandbox, "ana")
    bea = student(firestore, sandbox, "bea")

    wrong = [call(client, ana.token, {"accessCode": f"WRONG{n:03d}"}) for n in range(10)]
    state = everything(firestore)
    blocked = call(client, ana.token, {"accessCode": "WRONG999"})
    right = call(client, ana.token, {"accessCode": group.code})
    after_block = everything(firestore)
    other = call(client, bea.token, {"accessCode": group.code})

    assert [w.status_code for w in wrong] == [404] * 10
    assert blocked.status_code == right.status_code == 429
    assert blocked.get_json()["reason"] == "too_many_attempts"
    assert 3500 <= int(blocked.headers["Retry-After"]) <= 3600
    assert blocked.get_data() == right.get_data()
    assert after_block == state  # the right code did not let the guesser in
    assert other.status_code == 200  # another student is not blocked


def test_preflight_and_cors_follow_allowed_origins(
    client: Any, firestore: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    configure(env, ALLOWED_ORIGINS="https://school.example")
    group = stored_group_class(firestore)
    ana = student(firestore, sandbox, "ana")

    preflight = client.options(
        "/",
        headers={
            "Origin": "https://school.example",
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    allowed = call(client, ana.token, {"accessCode": group.code}, origin="https://school.example")
    other = call(client, ana.token, {"accessCode": group.code}, origin="https://evil.example")

    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://school.example"
    assert "DELETE" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://school.example"
    assert "Access-Control-Allow-Origin" not in other.headers
    assert client.get("/").status_code == 405


def test_no_token_or_access_code_reaches_the_logs(
    client: Any, firestore: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    group = stored_group_class(firestore)
    ana = student(firestore, sandbox, "ana")
    sandbox.set_oauth(id_token={"bad_signature": True})
    forged = id_token(sandbox, ana.email)
    sandbox.set_oauth()

    call(client, ana.token, {"accessCode": group.code})
    call(client, ana.token, {"accessCode": "WRONGCODE"})
    call(client, forged, {"accessCode": group.code})

    text = " ".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert group.code not in text
    assert "WRONGCODE" not in text
    assert ana.token not in text
    assert forged.split(".")[2] not in text


# --- seats under concurrency --------------------------------------------------------------


@pytest.mark.slow
def test_twenty_concurrent_joins_for_two_free_seats(
    client: Any, inviter: Any, firestore: Any, sandbox: Any
) -> None:
    group = scheduled_group_class(firestore, seats=3)  # the host and two guests
    students = [student(firestore, sandbox, f"s{n:02d}") for n in range(20)]
    answers: dict[str, Any] = {}
    barrier = threading.Barrier(len(students))

    def join(who: Any) -> None:
        own = join_app()  # one test client per thread, one app: like one instance
        barrier.wait()
        answers[who.user_id] = call(own, who.token, {"accessCode": group.code})

    threads = [threading.Thread(target=join, args=(s,)) for s in students]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    statuses = sorted(a.status_code for a in answers.values())
    assert statuses == [200] * 2 + [409] * 18, [a.get_json() for a in answers.values()]
    assert {a.get_json()["reason"] for a in answers.values() if a.status_code == 409} == {"full"}
    winners = sorted(uid for uid, a in answers.items() if a.status_code == 200)
    booking = read_booking(firestore, group.booking_id)
    assert sorted(booking["participantsIds"]) == winners
    assert booking["currentParticipants"] == booking["maxParticipants"] == 3
    assert sorted(guest_activities(firestore, group.booking_id)) == winners

    assert nudge(inviter, group.booking_id) == 200

    emails = {s.user_id: s.email for s in students}
    assert sorted(attendee_emails(sandbox, group.event_id)) == sorted(
        [STUDENT_EMAIL, *(emails[w] for w in winners)]
    )


# --- join, leave, and the order of things -------------------------------------------------


def test_join_join_leave_leave_keeps_counts_and_attendees_consistent(
    client: Any, inviter: Any, firestore: Any, sandbox: Any
) -> None:
    group = scheduled_group_class(firestore, seats=4)
    ana = student(firestore, sandbox, "ana")
    body = {"accessCode": group.code}

    def step(method: str) -> tuple[int, int, list[str]]:
        response = call(client, ana.token, body, method=method)
        assert response.status_code == 200, response.get_json()
        assert nudge(inviter, group.booking_id) == 200
        booking = read_booking(firestore, group.booking_id)
        assert booking["currentParticipants"] == response.get_json()["currentParticipants"]
        return (
            booking["currentParticipants"],
            len(booking["participantsIds"]),
            attendee_emails(sandbox, group.event_id),
        )

    assert step("POST") == (2, 1, [STUDENT_EMAIL, ana.email])
    assert step("POST") == (2, 1, [STUDENT_EMAIL, ana.email])
    assert step("DELETE") == (1, 0, [STUDENT_EMAIL])
    assert step("DELETE") == (1, 0, [STUDENT_EMAIL])
    assert len(_patches(sandbox, group.event_id)) == 2  # one invitation, one removal
    [activity] = guest_activities(firestore, group.booking_id).values()
    assert activity["status"] == "left"
    booking = read_booking(firestore, group.booking_id)
    assert booking["guestInvitations"][ana.user_id]["state"] == "removed"

    # Coming back is a new join: a seat again, invited again.
    assert step("POST") == (2, 1, [STUDENT_EMAIL, ana.email])
    assert guest_activities(firestore, group.booking_id)[ana.user_id]["status"] == "joined"


def test_a_join_then_an_immediate_leave_ends_not_invited(
    client: Any, inviter: Any, firestore: Any, sandbox: Any
) -> None:
    group = scheduled_group_class(firestore, seats=4)
    ana = student(firestore, sandbox, "ana")
    bea = student(firestore, sandbox, "bea")

    assert call(client, ana.token, {"accessCode": group.code}).status_code == 200
    assert call(client, bea.token, {"accessCode": group.code}).status_code == 200
    assert call(client, ana.token, {"accessCode": group.code}, method="DELETE").status_code == 200
    # Both nudges arrive after the leave (either order: they carry no guest).
    assert nudge(inviter, group.booking_id) == 200
    assert nudge(inviter, group.booking_id) == 200

    assert attendee_emails(sandbox, group.event_id) == [STUDENT_EMAIL, bea.email]
    [patch] = _patches(sandbox, group.event_id)  # ana was never invited
    assert ana.email not in patch["attendees"]


@pytest.mark.slow
def test_a_leave_while_the_invitation_is_being_made_ends_not_invited(
    client: Any, inviter: Any, firestore: Any, sandbox: Any
) -> None:
    group = scheduled_group_class(firestore, seats=4)
    ana = student(firestore, sandbox, "ana")
    assert call(client, ana.token, {"accessCode": group.code}).status_code == 200
    # The patch is slow: the leave lands while the worker is inviting her.
    sandbox.fault("calendar.events.patch", "", status=0, delay=1.5, count=1)
    statuses: list[int] = []
    worker = threading.Thread(target=lambda: statuses.append(nudge(guests_app(), group.booking_id)))
    worker.start()
    threading.Event().wait(0.5)
    left = call(client, ana.token, {"accessCode": group.code}, method="DELETE")
    worker.join(timeout=60)

    assert left.status_code == 200
    assert statuses == [200]
    assert attendee_emails(sandbox, group.event_id) == [STUDENT_EMAIL]
    # She was invited while she left; the worker saw the newer change and took her out.
    invited, removed = _patches(sandbox, group.event_id)
    assert ana.email in invited["attendees"]
    assert ana.email not in removed["attendees"]
    booking = read_booking(firestore, group.booking_id)
    assert booking["guestSyncPending"] is False
    assert booking["guestInvitations"][ana.user_id]["state"] == "removed"


# --- Calendar failures --------------------------------------------------------------------


def test_a_calendar_503_keeps_the_join_and_the_invitation_is_made_later_once(
    client: Any, inviter: Any, firestore: Any, sandbox: Any
) -> None:
    group = scheduled_group_class(firestore, seats=4)
    ana = student(firestore, sandbox, "ana")
    sandbox.fault("calendar.events.patch", "", status=503, reason="backendError", count=None)

    joined = call(client, ana.token, {"accessCode": group.code})
    first = nudge(inviter, group.booking_id)

    assert joined.status_code == 200
    assert first != 200  # not acknowledged: Pub/Sub redelivers
    booking = read_booking(firestore, group.booking_id)
    assert booking["participantsIds"] == [ana.user_id]
    assert booking["guestInvitations"][ana.user_id]["state"] == "waiting"
    assert booking["guestSyncPending"] is True
    assert attendee_emails(sandbox, group.event_id) == [STUDENT_EMAIL]

    sandbox.clear_faults()
    assert nudge(inviter, group.booking_id) == 200
    assert nudge(inviter, group.booking_id) == 200  # a late redelivery: nothing to do

    assert attendee_emails(sandbox, group.event_id) == [STUDENT_EMAIL, ana.email]
    assert len(_patches(sandbox, group.event_id)) == 1
    assert (
        read_booking(firestore, group.booking_id)["guestInvitations"][ana.user_id]["state"]
        == "invited"
    )


def test_an_invitation_whose_answer_was_lost_is_not_made_twice(
    client: Any, inviter: Any, firestore: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    configure(env, GOOGLE_API_RETRIES="0")
    group = scheduled_group_class(firestore, seats=4)
    ana = student(firestore, sandbox, "ana")
    # Google makes the change, then the answer is a 503.
    sandbox.fault("calendar.events.patch", "", status=503, commit=True, count=1)

    assert call(client, ana.token, {"accessCode": group.code}).status_code == 200
    assert nudge(inviter, group.booking_id) != 200
    assert nudge(inviter, group.booking_id) == 200

    assert attendee_emails(sandbox, group.event_id) == [STUDENT_EMAIL, ana.email]
    assert len(_patches(sandbox, group.event_id)) == 1


def test_maintenance_makes_the_invitations_a_lost_nudge_left(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    from shared.domain import maintenance

    group = scheduled_group_class(firestore, seats=4)
    ana = student(firestore, sandbox, "ana")
    assert call(client, ana.token, {"accessCode": group.code}).status_code == 200

    result = maintenance.MaintenanceResult()
    maintenance.sync_guests(result, deadline=float("inf"))

    assert result.guest_classes_synced == 1
    assert attendee_emails(sandbox, group.event_id) == [STUDENT_EMAIL, ana.email]
    assert read_booking(firestore, group.booking_id)["guestSyncPending"] is False


def test_a_join_publishes_the_booking_id_to_the_guest_changes_topic(
    client: Any, firestore: Any, sandbox: Any, pubsub: Any, env: pytest.MonkeyPatch
) -> None:
    import base64
    import json

    from localstack import processes

    configure(env, GUEST_CHANGES_TOPIC="guest-changes")
    pubsub.create_topic("guest-changes")
    base = f"http://{pubsub.host}/v1/projects/{pubsub.project}"
    status, _ = processes.http(
        "PUT",
        f"{base}/subscriptions/probe",
        {"topic": f"projects/{pubsub.project}/topics/guest-changes"},
    )
    assert status == 200
    group = stored_group_class(firestore)
    ana = student(firestore, sandbox, "ana")

    assert call(client, ana.token, {"accessCode": group.code}).status_code == 200

    status, body = processes.http("POST", f"{base}/subscriptions/probe:pull", {"maxMessages": 10})
    messages = json.loads(body).get("receivedMessages", [])
    assert [json.loads(base64.b64decode(m["message"]["data"])) for m in messages] == [
        {"bookingId": group.booking_id}
    ]
    assert get_config().guest_changes_topic == "guest-changes"


# --- cancellation and moves ---------------------------------------------------------------


def _two_invited_guests(client: Any, inviter: Any, firestore: Any, sandbox: Any) -> Any:
    group = scheduled_group_class(firestore, seats=4)
    guests = [student(firestore, sandbox, name) for name in ("ana", "bea")]
    for guest in guests:
        assert call(client, guest.token, {"accessCode": group.code}).status_code == 200
    assert nudge(inviter, group.booking_id) == 200
    assert attendee_emails(sandbox, group.event_id) == [STUDENT_EMAIL, *(g.email for g in guests)]
    return group, guests


def test_a_refund_marks_every_guest_and_the_deleted_event_tells_them(
    client: Any, inviter: Any, firestore: Any, sandbox: Any
) -> None:
    group, guests = _two_invited_guests(client, inviter, firestore, sandbox)
    preference = read_booking(firestore, group.booking_id)["preferenceId"]

    assert deliver(app_client(), payment(preference, "refunded")) == 200

    found = event(sandbox, group.event_id)
    assert found["status"] == "cancelled"
    [deleted] = [e for e in found["sandbox"]["sendUpdates"] if e["method"].endswith("delete")]
    assert deleted["sendUpdates"] == "all"
    assert sorted(deleted["attendees"]) == sorted([STUDENT_EMAIL, *(g.email for g in guests)])
    activities = guest_activities(firestore, group.booking_id)
    assert {uid: a["status"] for uid, a in activities.items()} == {
        g.user_id: "cancelled" for g in guests
    }
    # A join now is refused, and a late nudge changes nothing in Google.
    late = student(firestore, sandbox, "late")
    assert call(client, late.token, {"accessCode": group.code}).get_json()["reason"] == "cancelled"
    assert nudge(inviter, group.booking_id) == 200
    assert sandbox_calls(sandbox, "calendar.events.patch") == 1


def test_a_class_deleted_in_google_marks_every_guest(
    client: Any, inviter: Any, firestore: Any, sandbox: Any
) -> None:
    from shared.domain import sync
    from tests.support.calendar_sync import admin_calendar, delete

    group, guests = _two_invited_guests(client, inviter, firestore, sandbox)

    delete(admin_calendar(sandbox), group.event_id)
    sync.sync_calendar()

    assert read_booking(firestore, group.booking_id)["status"] == "cancelled"
    activities = guest_activities(firestore, group.booking_id)
    assert {a["status"] for a in activities.values()} == {"cancelled"}
    assert len(activities) == len(guests)


def test_a_class_moved_in_google_keeps_its_guests(
    client: Any, inviter: Any, firestore: Any, sandbox: Any
) -> None:
    from shared.domain import sync
    from tests.support.calendar_sync import admin_calendar, move

    group, guests = _two_invited_guests(client, inviter, firestore, sandbox)
    before = read_booking(firestore, group.booking_id)

    start, _ = move(admin_calendar(sandbox), group.event_id, timedelta(hours=2))
    sync.sync_calendar()

    booking = read_booking(firestore, group.booking_id)
    assert booking["startTime"] == start
    assert booking["participantsIds"] == before["participantsIds"]
    assert booking["currentParticipants"] == 3
    assert attendee_emails(sandbox, group.event_id) == [STUDENT_EMAIL, *(g.email for g in guests)]
    # A third guest joins the moved class and is invited beside the others.
    cleo = student(firestore, sandbox, "cleo")
    answer = call(client, cleo.token, {"accessCode": group.code})
    assert answer.get_json()["startTime"] == start.astimezone(UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert nudge(inviter, group.booking_id) == 200
    assert attendee_emails(sandbox, group.event_id)[-1] == cleo.email


# --- the rules alone ----------------------------------------------------------------------


def test_the_wrong_code_rule_counts_an_hour_back() -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    old = [now - timedelta(minutes=61)] * 5
    recent = [now - timedelta(minutes=59 - n) for n in range(9)]

    assert group_classes.wrong_code_rule(now, wrong=True)(old + recent) == (
        None,
        [*recent, now],
    )
    retry_after, keep = group_classes.wrong_code_rule(now, wrong=False)([*recent, now])
    assert keep is None
    assert retry_after == 60  # the oldest of the ten leaves the window in a minute
    assert group_classes.wrong_code_rule(now, wrong=False)(recent) == (None, None)
