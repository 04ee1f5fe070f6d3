"""Calendar events insert/get/patch/update/delete through googleapiclient."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
import requests
from googleapiclient.errors import HttpError

from tests.support.sandbox_clients import (
    ADMIN,
    CALENDAR,
    CALENDAR_EVENTS,
    CALENDAR_READONLY,
    CLIENT_ID,
    MONDAY,
    TEACHER,
    api_key_service,
    event_body,
    rfc3339,
)


def error_of(exc: HttpError) -> dict:
    return json.loads(exc.content)["error"]


def test_insert_returns_a_full_event_resource(calendar):
    body = event_body(
        description="Level B1",
        location="Room 3",
        attendees=[{"email": "student@example.com"}],
        extendedProperties={"private": {"bookingId": "bk-1"}},
        transparency="opaque",
    )

    event = calendar.events().insert(calendarId="primary", body=body).execute()

    assert event["kind"] == "calendar#event"
    assert len(event["id"]) == 26
    assert set(event["id"]) <= set("0123456789abcdefghijklmnopqrstuv")
    assert event["status"] == "confirmed"
    assert event["iCalUID"] == f"{event['id']}@google.com"
    eid = event["htmlLink"].split("eid=")[1]
    decoded = base64.urlsafe_b64decode(eid + "=" * (-len(eid) % 4)).decode()
    assert decoded == f"{event['id']} {ADMIN}"
    assert event["organizer"] == {"email": ADMIN, "self": True}
    assert event["creator"] == {"email": ADMIN, "self": True}
    assert event["attendees"] == [{"email": "student@example.com", "responseStatus": "needsAction"}]
    assert event["extendedProperties"] == {"private": {"bookingId": "bk-1"}}
    assert event["sequence"] == 0
    assert event["eventType"] == "default"
    assert event["reminders"] == {"useDefault": True}
    # Times come back in the calendar's zone (Buenos Aires, UTC-3).
    assert event["start"] == {"dateTime": "2031-03-03T10:00:00-03:00"}
    assert event["created"].endswith("Z")
    assert event["updated"].endswith("Z")


def test_get_returns_what_insert_stored(calendar):
    inserted = calendar.events().insert(calendarId="primary", body=event_body()).execute()

    fetched = calendar.events().get(calendarId="primary", eventId=inserted["id"]).execute()

    assert fetched == inserted


def test_time_zone_field_is_kept_and_dates_can_be_all_day(calendar):
    timed = {
        "summary": "local time",
        "start": {"dateTime": "2031-03-03T18:00:00", "timeZone": "Europe/Madrid"},
        "end": {"dateTime": "2031-03-03T19:00:00", "timeZone": "Europe/Madrid"},
    }
    all_day = {"summary": "holiday", "start": {"date": "2031-03-04"}, "end": {"date": "2031-03-05"}}

    first = calendar.events().insert(calendarId="primary", body=timed).execute()
    second = calendar.events().insert(calendarId="primary", body=all_day).execute()

    assert first["start"] == {"dateTime": "2031-03-03T14:00:00-03:00", "timeZone": "Europe/Madrid"}
    assert second["start"] == {"date": "2031-03-04"}


def test_client_supplied_id_then_duplicate_even_after_delete(calendar):
    body = event_body(id="booking0001")
    calendar.events().insert(calendarId="primary", body=body).execute()

    with pytest.raises(HttpError) as first:
        calendar.events().insert(calendarId="primary", body=body).execute()
    calendar.events().delete(calendarId="primary", eventId="booking0001").execute()
    with pytest.raises(HttpError) as second:
        calendar.events().insert(calendarId="primary", body=body).execute()

    for raised in (first, second):
        assert raised.value.status_code == 409
        error = error_of(raised.value)
        assert error["errors"][0]["reason"] == "duplicate"
        assert error["message"] == "The requested identifier already exists."


@pytest.mark.parametrize("bad_id", ["abc", "has-dash01", "UPPERCASE01", "wxyz012345", "a" * 1025])
def test_invalid_client_ids_are_rejected(calendar, bad_id):
    with pytest.raises(HttpError) as raised:
        calendar.events().insert(calendarId="primary", body=event_body(id=bad_id)).execute()

    assert raised.value.status_code == 400
    assert error_of(raised.value)["errors"][0]["reason"] == "invalid"


def test_delete_leaves_a_tombstone_and_a_second_delete_is_410(calendar):
    event = calendar.events().insert(calendarId="primary", body=event_body()).execute()

    result = calendar.events().delete(calendarId="primary", eventId=event["id"]).execute()
    tombstone = calendar.events().get(calendarId="primary", eventId=event["id"]).execute()
    with pytest.raises(HttpError) as raised:
        calendar.events().delete(calendarId="primary", eventId=event["id"]).execute()
    listed = calendar.events().list(calendarId="primary").execute()["items"]
    with_deleted = calendar.events().list(calendarId="primary", showDeleted=True).execute()

    assert result == ""
    assert tombstone["status"] == "cancelled"
    assert raised.value.status_code == 410
    assert error_of(raised.value)["errors"][0]["reason"] == "deleted"
    assert listed == []
    assert [e["id"] for e in with_deleted["items"]] == [event["id"]]


def test_unknown_event_is_404(calendar):
    with pytest.raises(HttpError) as raised:
        calendar.events().get(calendarId="primary", eventId="nosuchevent1").execute()

    assert raised.value.status_code == 404
    assert error_of(raised.value)["errors"][0] == {
        "domain": "global",
        "reason": "notFound",
        "message": "Not Found",
    }


def test_end_before_start_is_time_range_empty(calendar):
    body = event_body(start=MONDAY, minutes=-30)

    with pytest.raises(HttpError) as raised:
        calendar.events().insert(calendarId="primary", body=body).execute()

    assert raised.value.status_code == 400
    assert error_of(raised.value)["errors"][0]["reason"] == "timeRangeEmpty"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"summary": "no times"}, "required"),
        (
            {
                "start": {"dateTime": "2031-03-03T10:00:00"},
                "end": {"dateTime": "2031-03-03T11:00:00"},
            },
            "required",
        ),
        ({"start": {"date": "2031-03-03"}, "end": {"dateTime": "2031-03-03T11:00:00Z"}}, "invalid"),
        ({**event_body(), "attendees": [{"displayName": "no email"}]}, "required"),
        ({**event_body(), "transparency": "see-through"}, "invalid"),
        ({**event_body(), "summary": 12}, "invalid"),
        ({**event_body(), "recurrence": ["RRULE:FREQ=DAILY"]}, "required"),  # no timeZone
        (
            {
                "start": {"dateTime": "2031-03-03T10:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2031-03-03T11:00:00", "timeZone": "UTC"},
                "recurrence": ["RRULE:FREQ=HOURLY"],
            },
            "invalid",
        ),
        (
            {
                **event_body(),
                "reminders": {"useDefault": True, "overrides": [{"method": "popup", "minutes": 5}]},
            },
            "cannotUseDefaultRemindersAndSpecifyOverride",
        ),
    ],
)
def test_malformed_events_are_400(calendar, body, reason):
    with pytest.raises(HttpError) as raised:
        calendar.events().insert(calendarId="primary", body=body).execute()

    assert raised.value.status_code == 400
    assert error_of(raised.value)["errors"][0]["reason"] == reason


def test_patch_merges_and_update_replaces(calendar):
    body = event_body(
        description="keep me",
        extendedProperties={"private": {"bookingId": "bk-1", "teacher": "ana"}},
    )
    event = calendar.events().insert(calendarId="primary", body=body).execute()

    patched = (
        calendar.events()
        .patch(
            calendarId="primary",
            eventId=event["id"],
            body={"summary": "renamed", "extendedProperties": {"private": {"teacher": "bo"}}},
        )
        .execute()
    )
    updated = (
        calendar.events()
        .update(calendarId="primary", eventId=event["id"], body=event_body(summary="replaced"))
        .execute()
    )

    assert patched["summary"] == "renamed"
    assert patched["description"] == "keep me"
    assert patched["extendedProperties"]["private"] == {"bookingId": "bk-1", "teacher": "bo"}
    assert patched["sequence"] == 0  # times unchanged
    assert updated["summary"] == "replaced"
    assert "description" not in updated
    assert "extendedProperties" not in updated
    assert updated["updated"] > event["updated"]


def test_sequence_bumps_when_times_change(calendar):
    event = calendar.events().insert(calendarId="primary", body=event_body()).execute()
    later = event_body(start=MONDAY + timedelta(hours=2))

    moved = (
        calendar.events()
        .patch(
            calendarId="primary",
            eventId=event["id"],
            body={"start": later["start"], "end": later["end"]},
        )
        .execute()
    )

    assert moved["sequence"] == 1
    assert moved["start"]["dateTime"] == "2031-03-03T12:00:00-03:00"


def test_send_updates_is_recorded_not_mailed(sandbox, calendar):
    body = event_body(attendees=[{"email": "student@example.com"}])
    event = calendar.events().insert(calendarId="primary", body=body, sendUpdates="all").execute()
    calendar.events().patch(
        calendarId="primary", eventId=event["id"], body={"summary": "x"}, sendUpdates="none"
    ).execute()
    calendar.events().delete(
        calendarId="primary", eventId=event["id"], sendUpdates="externalOnly"
    ).execute()

    [dumped] = sandbox.events(ADMIN)
    log = dumped["sandbox"]["sendUpdates"]

    assert [(entry["method"], entry["sendUpdates"]) for entry in log] == [
        ("calendar.events.insert", "all"),
        ("calendar.events.patch", "none"),
        ("calendar.events.delete", "externalOnly"),
    ]
    assert log[0]["attendees"] == ["student@example.com"]
    assert sandbox.stats()["send_updates"] == {"all": 1, "none": 1, "externalOnly": 1}
    assert dumped["status"] == "cancelled"


@pytest.mark.parametrize("authorization", [None, "Bearer ya29.not-a-token", "Basic Zm9vOmJhcg=="])
def test_missing_or_unknown_credentials_are_401_auth_error(sandbox, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    response = requests.get(
        f"{sandbox.url}/calendar/v3/calendars/primary/events", headers=headers, timeout=5
    )

    assert response.status_code == 401
    detail = response.json()["error"]["errors"][0]
    assert detail["reason"] == "authError"
    assert detail["domain"] == "global"
    assert detail["locationType"] == "header"
    assert detail["location"] == "Authorization"


def test_revoked_or_expired_access_token_is_401(sandbox):
    url = f"{sandbox.url}/calendar/v3/calendars/primary/events"
    revoked = sandbox.issue_token(ADMIN, CLIENT_ID, CALENDAR)["access_token"]
    sandbox.set_oauth(access_token_ttl=0)
    expired = sandbox.issue_token(ADMIN, CLIENT_ID, CALENDAR)["access_token"]

    before = requests.get(url, headers={"Authorization": f"Bearer {revoked}"}, timeout=5)
    requests.post(f"{sandbox.url}/revoke", params={"token": revoked}, timeout=5).raise_for_status()
    after = requests.get(url, headers={"Authorization": f"Bearer {revoked}"}, timeout=5)
    stale = requests.get(url, headers={"Authorization": f"Bearer {expired}"}, timeout=5)

    assert before.status_code == 200
    assert after.status_code == 401
    assert stale.status_code == 401
    assert after.json()["error"]["errors"][0]["reason"] == "authError"


def test_read_only_scope_can_read_but_not_write(calendar, calendar_as):
    event = calendar.events().insert(calendarId="primary", body=event_body()).execute()
    reader = calendar_as(ADMIN, CALENDAR_READONLY)

    fetched = reader.events().get(calendarId="primary", eventId=event["id"]).execute()
    with pytest.raises(HttpError) as raised:
        reader.events().insert(calendarId="primary", body=event_body()).execute()

    assert fetched["id"] == event["id"]
    assert raised.value.status_code == 403
    assert error_of(raised.value)["errors"][0]["reason"] == "insufficientPermissions"


def test_events_scope_can_write(calendar_as):
    writer = calendar_as(ADMIN, CALENDAR_EVENTS)

    event = writer.events().insert(calendarId="primary", body=event_body()).execute()

    assert event["status"] == "confirmed"


def test_another_users_private_calendar_is_404(calendar, calendar_as):
    calendar.events().insert(calendarId="primary", body=event_body()).execute()
    teacher = calendar_as(TEACHER)

    with pytest.raises(HttpError) as raised:
        teacher.events().list(calendarId=ADMIN).execute()

    assert raised.value.status_code == 404


def test_secondary_calendar_owned_by_the_admin(sandbox, calendar):
    sandbox.add_calendar("classes@group.calendar.google.com", owner=ADMIN, summary="Classes")

    event = (
        calendar.events()
        .insert(calendarId="classes@group.calendar.google.com", body=event_body())
        .execute()
    )

    assert event["organizer"] == {
        "email": "classes@group.calendar.google.com",
        "displayName": "Classes",
        "self": True,
    }
    assert sandbox.events(ADMIN) == []


def test_api_key_reads_public_calendar_only(sandbox, calendar):
    sandbox.add_calendar("public@group.calendar.google.com", owner=ADMIN, public=True)
    sandbox.add_calendar("private@group.calendar.google.com", owner=ADMIN)
    for calendar_id in ("public@group.calendar.google.com", "private@group.calendar.google.com"):
        calendar.events().insert(calendarId=calendar_id, body=event_body()).execute()
    keyed = api_key_service(sandbox)

    public = keyed.events().list(calendarId="public@group.calendar.google.com").execute()
    with pytest.raises(HttpError) as private:
        keyed.events().list(calendarId="private@group.calendar.google.com").execute()
    with pytest.raises(HttpError) as write:
        keyed.events().insert(
            calendarId="public@group.calendar.google.com", body=event_body()
        ).execute()

    assert len(public["items"]) == 1
    assert public["accessRole"] == "reader"
    assert "self" not in public["items"][0]["organizer"]
    assert private.value.status_code == 404
    assert write.value.status_code == 401


def test_times_in_another_time_zone_on_request(calendar):
    event = calendar.events().insert(calendarId="primary", body=event_body()).execute()

    fetched = (
        calendar.events().get(calendarId="primary", eventId=event["id"], timeZone="UTC").execute()
    )

    assert fetched["start"]["dateTime"] == rfc3339(MONDAY)


def test_writing_to_someone_elses_public_calendar_needs_writer_access(sandbox, calendar_as):
    sandbox.add_calendar(TEACHER, owner=TEACHER, public=True)
    admin = calendar_as(ADMIN)

    readable = admin.events().list(calendarId=TEACHER).execute()
    with pytest.raises(HttpError) as raised:
        admin.events().insert(calendarId=TEACHER, body=event_body()).execute()

    assert readable["accessRole"] == "reader"
    assert raised.value.status_code == 403
    assert error_of(raised.value)["errors"][0]["reason"] == "requiredAccessLevel"


def test_primary_with_an_api_key_is_404(sandbox):
    with pytest.raises(HttpError) as raised:
        api_key_service(sandbox).events().list(calendarId="primary").execute()

    assert raised.value.status_code == 404


def test_all_day_recurring_instances(calendar):
    body = {
        "summary": "Holiday week",
        "start": {"date": "2031-03-03"},
        "end": {"date": "2031-03-04"},
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
    }
    master = calendar.events().insert(calendarId="primary", body=body).execute()

    items = calendar.events().list(calendarId="primary", singleEvents=True).execute()["items"]

    assert [e["id"] for e in items] == [
        f"{master['id']}_20310303",
        f"{master['id']}_20310304",
        f"{master['id']}_20310305",
    ]
    assert items[1]["start"] == {"date": "2031-03-04"}
    assert items[1]["originalStartTime"] == {"date": "2031-03-04"}
