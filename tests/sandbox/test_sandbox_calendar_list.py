"""events.list: paging, sync tokens, filters, ordering, recurrence, partial responses;
and freeBusy."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from googleapiclient.errors import HttpError

from tests.support.sandbox_clients import (
    ADMIN,
    FREEBUSY,
    MONDAY,
    TEACHER,
    api_key_service,
    calendar_service,
    event_body,
    rfc3339,
)


def insert(calendar, **kwargs):
    return calendar.events().insert(calendarId="primary", body=event_body(**kwargs)).execute()


def reason_of(exc: HttpError) -> str:
    return json.loads(exc.content)["error"]["errors"][0]["reason"]


def list_all(calendar, **params):
    """Every page of a listing; returns (items, nextSyncToken)."""
    items, token = [], None
    while True:
        page = calendar.events().list(calendarId="primary", pageToken=token, **params).execute()
        items.extend(page["items"])
        assert not ("nextPageToken" in page and "nextSyncToken" in page)
        token = page.get("nextPageToken")
        if token is None:
            return items, page.get("nextSyncToken")


@pytest.mark.slow
def test_paging_over_600_events(calendar):
    # One events() resource for all inserts: googleapiclient rebuilds every
    # method on each events() call, which costs more than the request itself.
    events = calendar.events()
    for index in range(600):
        body = event_body(start=MONDAY + timedelta(hours=index), summary=f"class {index}")
        events.insert(calendarId="primary", body=body).execute()

    first = calendar.events().list(calendarId="primary").execute()
    items, sync_token = list_all(calendar, maxResults=2500)
    paged, _ = list_all(calendar, maxResults=100)

    assert len(first["items"]) == 250  # the default page size
    assert "nextPageToken" in first
    assert "nextSyncToken" not in first
    assert len(items) == 600
    assert sync_token
    assert [e["id"] for e in paged] == [e["id"] for e in items]
    assert len({e["id"] for e in items}) == 600


def test_max_results_is_clamped_to_2500(sandbox, calendar):
    insert(calendar)

    page = calendar.events().list(calendarId="primary", maxResults=100000).execute()

    assert len(page["items"]) == 1
    assert "nextSyncToken" in page


def test_list_envelope(calendar):
    insert(calendar)

    page = calendar.events().list(calendarId="primary").execute()

    assert page["kind"] == "calendar#events"
    assert page["summary"] == ADMIN
    assert page["timeZone"] == "America/Argentina/Buenos_Aires"
    assert page["accessRole"] == "owner"
    assert page["defaultReminders"] == [{"method": "popup", "minutes": 10}]
    assert page["updated"].endswith("Z")


def test_incremental_sync_returns_changes_and_deletions(calendar):
    kept = insert(calendar, summary="kept")
    doomed = insert(calendar, summary="doomed")
    _, token = list_all(calendar)

    changed = (
        calendar.events()
        .patch(calendarId="primary", eventId=kept["id"], body={"summary": "changed"})
        .execute()
    )
    calendar.events().delete(calendarId="primary", eventId=doomed["id"]).execute()
    added = insert(calendar, summary="added")
    changes, next_token = list_all(calendar, syncToken=token)
    nothing, _ = list_all(calendar, syncToken=next_token)

    by_id = {e["id"]: e for e in changes}
    assert set(by_id) == {kept["id"], doomed["id"], added["id"]}
    assert by_id[doomed["id"]]["status"] == "cancelled"
    assert by_id[kept["id"]]["summary"] == changed["summary"]
    assert nothing == []


def test_incremental_sync_is_paged_too(calendar):
    _, token = list_all(calendar)
    for index in range(5):
        insert(calendar, start=MONDAY + timedelta(hours=index))

    first = calendar.events().list(calendarId="primary", syncToken=token, maxResults=2).execute()
    changes, _ = list_all(calendar, syncToken=token, maxResults=2)

    assert len(first["items"]) == 2
    assert "nextPageToken" in first
    assert len(changes) == 5


def test_expired_sync_token_is_410_full_sync_required(sandbox, calendar):
    insert(calendar)
    _, token = list_all(calendar)

    expired = sandbox.expire_sync_tokens()
    with pytest.raises(HttpError) as raised:
        calendar.events().list(calendarId="primary", syncToken=token).execute()

    assert expired >= 1
    assert raised.value.status_code == 410
    error = json.loads(raised.value.content)["error"]["errors"][0]
    assert error["reason"] == "fullSyncRequired"
    assert error["domain"] == "calendar"


def test_expiring_another_calendars_tokens_keeps_these(sandbox, calendar):
    _, token = list_all(calendar)

    sandbox.expire_sync_tokens(calendar="someone-else@school.test")
    page = calendar.events().list(calendarId="primary", syncToken=token).execute()

    assert page["items"] == []


@pytest.mark.parametrize(
    "extra",
    [
        {"timeMin": "2031-01-01T00:00:00Z"},
        {"timeMax": "2031-01-01T00:00:00Z"},
        {"q": "class"},
        {"updatedMin": "2031-01-01T00:00:00Z"},
        {"orderBy": "updated"},
        {"iCalUID": "x@google.com"},
        {"privateExtendedProperty": "bookingId=1"},
    ],
)
def test_sync_token_cannot_be_combined(calendar, extra):
    _, token = list_all(calendar)

    with pytest.raises(HttpError) as raised:
        calendar.events().list(calendarId="primary", syncToken=token, **extra).execute()

    assert raised.value.status_code == 400


def test_time_window_bounds_end_and_start_exclusively(calendar):
    early = insert(calendar, start=MONDAY, minutes=60, summary="early")
    late = insert(calendar, start=MONDAY + timedelta(hours=2), minutes=60, summary="late")

    touching_end = (
        calendar.events()
        .list(calendarId="primary", timeMin=rfc3339(MONDAY + timedelta(hours=1)))
        .execute()
    )
    touching_start = (
        calendar.events()
        .list(calendarId="primary", timeMax=rfc3339(MONDAY + timedelta(hours=2)))
        .execute()
    )
    with_offset = (
        calendar.events()
        .list(
            calendarId="primary",
            timeMin="2031-03-03T10:30:00-03:00",
            timeMax="2031-03-03T12:30:00-03:00",
        )
        .execute()
    )

    assert [e["id"] for e in touching_end["items"]] == [late["id"]]
    assert [e["id"] for e in touching_start["items"]] == [early["id"]]
    assert [e["id"] for e in with_offset["items"]] == [early["id"], late["id"]]


def test_bad_time_window_values(calendar):
    with pytest.raises(HttpError) as empty:
        calendar.events().list(
            calendarId="primary", timeMin=rfc3339(MONDAY), timeMax=rfc3339(MONDAY)
        ).execute()
    with pytest.raises(HttpError) as no_offset:
        calendar.events().list(calendarId="primary", timeMin="2031-03-03T10:00:00").execute()

    assert empty.value.status_code == 400
    assert reason_of(empty.value) == "timeRangeEmpty"
    assert no_offset.value.status_code == 400
    assert reason_of(no_offset.value) == "badRequest"


def test_order_by_start_time_needs_single_events(calendar):
    second = insert(calendar, start=MONDAY + timedelta(hours=3), summary="second")
    first = insert(calendar, start=MONDAY, summary="first")

    with pytest.raises(HttpError) as raised:
        calendar.events().list(calendarId="primary", orderBy="startTime").execute()
    ordered = (
        calendar.events()
        .list(calendarId="primary", orderBy="startTime", singleEvents=True)
        .execute()
    )
    by_update = calendar.events().list(calendarId="primary", orderBy="updated").execute()

    assert raised.value.status_code == 400
    assert [e["id"] for e in ordered["items"]] == [first["id"], second["id"]]
    assert [e["id"] for e in by_update["items"]] == [second["id"], first["id"]]


def test_private_extended_property_q_and_updated_min_filters(calendar):
    wanted = insert(
        calendar,
        summary="Conversation club",
        extendedProperties={"private": {"bookingId": "bk-42", "kind": "class"}},
    )
    insert(calendar, summary="Grammar", extendedProperties={"private": {"bookingId": "bk-7"}})

    by_property = (
        calendar.events()
        .list(calendarId="primary", privateExtendedProperty=["bookingId=bk-42", "kind=class"])
        .execute()
    )
    by_text = calendar.events().list(calendarId="primary", q="conversation").execute()
    future = (
        calendar.events().list(calendarId="primary", updatedMin="2999-01-01T00:00:00Z").execute()
    )

    assert [e["id"] for e in by_property["items"]] == [wanted["id"]]
    assert [e["id"] for e in by_text["items"]] == [wanted["id"]]
    assert future["items"] == []


def test_weekly_recurrence_expands_into_instances(calendar):
    body = {
        "summary": "Weekly class",
        "start": {"dateTime": "2031-03-03T18:00:00", "timeZone": "America/New_York"},
        "end": {"dateTime": "2031-03-03T19:00:00", "timeZone": "America/New_York"},
        "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4"],
    }
    master = calendar.events().insert(calendarId="primary", body=body).execute()

    collapsed = calendar.events().list(calendarId="primary").execute()
    expanded = (
        calendar.events()
        .list(calendarId="primary", singleEvents=True, orderBy="startTime", timeZone="UTC")
        .execute()
    )
    instance = expanded["items"][2]
    fetched = calendar.events().get(calendarId="primary", eventId=instance["id"]).execute()

    assert [e["id"] for e in collapsed["items"]] == [master["id"]]
    assert collapsed["items"][0]["recurrence"] == body["recurrence"]
    # New York changes to summer time on 9 March 2031: 18:00 local stays 18:00.
    assert [e["start"]["dateTime"] for e in expanded["items"]] == [
        "2031-03-03T23:00:00Z",
        "2031-03-05T23:00:00Z",
        "2031-03-10T22:00:00Z",
        "2031-03-12T22:00:00Z",
    ]
    assert instance["id"] == f"{master['id']}_20310310T220000Z"
    assert instance["recurringEventId"] == master["id"]
    assert instance["originalStartTime"] == {
        "dateTime": "2031-03-10T22:00:00Z",
        "timeZone": "America/New_York",
    }
    assert "recurrence" not in instance
    assert fetched["id"] == instance["id"]


def test_daily_recurrence_with_interval_until_and_window(calendar):
    body = {
        "summary": "Every other day",
        "start": {"dateTime": "2031-03-03T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2031-03-03T11:00:00", "timeZone": "UTC"},
        "recurrence": [
            "RRULE:FREQ=DAILY;INTERVAL=2;UNTIL=20310311T235959Z",
            "EXDATE:20310307T100000Z",
        ],
    }
    calendar.events().insert(calendarId="primary", body=body).execute()

    everything = (
        calendar.events().list(calendarId="primary", singleEvents=True, timeZone="UTC").execute()
    )
    window = (
        calendar.events()
        .list(
            calendarId="primary",
            singleEvents=True,
            timeZone="UTC",
            timeMin="2031-03-04T00:00:00Z",
            timeMax="2031-03-10T00:00:00Z",
        )
        .execute()
    )

    starts = [e["start"]["dateTime"][:10] for e in everything["items"]]
    assert starts == ["2031-03-03", "2031-03-05", "2031-03-09", "2031-03-11"]
    assert [e["start"]["dateTime"][:10] for e in window["items"]] == ["2031-03-05", "2031-03-09"]


def test_fields_partial_responses(calendar):
    insert(calendar, description="hidden")

    listed = (
        calendar.events()
        .list(calendarId="primary", fields="items(id,summary,start/dateTime),nextSyncToken")
        .execute()
    )
    got = (
        calendar.events()
        .get(calendarId="primary", eventId=listed["items"][0]["id"], fields="id,organizer/email")
        .execute()
    )
    with pytest.raises(HttpError) as raised:
        calendar.events().list(calendarId="primary", fields="items(nope)").execute()

    assert set(listed) == {"items", "nextSyncToken"}
    assert set(listed["items"][0]) == {"id", "summary", "start"}
    assert set(listed["items"][0]["start"]) == {"dateTime"}
    assert got == {"id": listed["items"][0]["id"], "organizer": {"email": ADMIN}}
    assert raised.value.status_code == 400


def test_freebusy_counts_opaque_live_events_only(sandbox, calendar_as):
    admin = calendar_as()
    admin.events().insert(calendarId="primary", body=event_body(start=MONDAY)).execute()
    admin.events().insert(
        calendarId="primary",
        body=event_body(start=MONDAY + timedelta(minutes=30), minutes=60),
    ).execute()
    admin.events().insert(
        calendarId="primary",
        body=event_body(start=MONDAY + timedelta(hours=3), transparency="transparent"),
    ).execute()
    gone = (
        admin.events()
        .insert(calendarId="primary", body=event_body(start=MONDAY + timedelta(hours=5)))
        .execute()
    )
    admin.events().delete(calendarId="primary", eventId=gone["id"]).execute()
    freebusy_only = calendar_as(ADMIN, FREEBUSY)

    result = (
        freebusy_only.freebusy()
        .query(
            body={
                "timeMin": rfc3339(MONDAY - timedelta(hours=1)),
                "timeMax": rfc3339(MONDAY + timedelta(hours=8)),
                "timeZone": "UTC",
                "items": [{"id": ADMIN}, {"id": TEACHER}],
            }
        )
        .execute()
    )

    assert result["kind"] == "calendar#freeBusy"
    assert result["calendars"][ADMIN]["busy"] == [
        {"start": rfc3339(MONDAY), "end": rfc3339(MONDAY + timedelta(minutes=90))}
    ]
    assert result["calendars"][TEACHER]["errors"] == [{"domain": "global", "reason": "notFound"}]


def test_freebusy_of_a_public_calendar_with_an_api_key(sandbox):
    sandbox.add_calendar(TEACHER, owner=TEACHER, public=True)
    teacher = calendar_service(sandbox, TEACHER)
    teacher.events().insert(calendarId="primary", body=event_body()).execute()

    result = (
        api_key_service(sandbox)
        .freebusy()
        .query(
            body={
                "timeMin": rfc3339(MONDAY - timedelta(hours=1)),
                "timeMax": rfc3339(MONDAY + timedelta(hours=2)),
                "items": [{"id": TEACHER}, {"id": ADMIN}],
            }
        )
        .execute()
    )

    assert len(result["calendars"][TEACHER]["busy"]) == 1
    assert result["calendars"][ADMIN]["errors"][0]["reason"] == "notFound"


def test_freebusy_needs_a_non_empty_window(calendar):
    body = {"timeMin": rfc3339(MONDAY), "timeMax": rfc3339(MONDAY), "items": [{"id": ADMIN}]}

    with pytest.raises(HttpError) as raised:
        calendar.freebusy().query(body=body).execute()

    assert raised.value.status_code == 400
    assert reason_of(raised.value) == "timeRangeEmpty"


def test_updated_min_includes_deletions_since(calendar):
    doomed = insert(calendar)
    calendar.events().delete(calendarId="primary", eventId=doomed["id"]).execute()

    page = calendar.events().list(calendarId="primary", updatedMin="2000-01-01T00:00:00Z").execute()

    assert [(e["id"], e["status"]) for e in page["items"]] == [(doomed["id"], "cancelled")]
