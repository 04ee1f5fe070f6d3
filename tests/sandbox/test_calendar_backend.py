"""The Calendar backend driven directly, without HTTP: state and rules only.

Each test builds its own `CalendarBackend`, passes a `Caller` and reads the snapshots
it returns; where the JSON matters, `render` turns them into resources checked
against the discovery schema, as the server does for every response.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from sandbox.calendar import render
from sandbox.calendar.auth import API_KEY_CALLER, READ_SCOPES, WRITE_SCOPES, Caller
from sandbox.calendar.backend import CalendarBackend
from sandbox.calendar.errors import CalendarError
from sandbox.calendar.models import ConferenceSettings
from sandbox.calendar.query import ListQuery
from sandbox.core.schema import DiscoverySchema
from sandbox.core.stats import Stats

ADMIN = "admin@school.test"
TEACHER = "teacher@school.test"
OWNER = Caller(ADMIN, WRITE_SCOPES)
STRANGER = Caller(TEACHER, WRITE_SCOPES)
SCHEMA = DiscoverySchema.bundled("calendar", "v3")
# A fixed Monday in the future, so nothing depends on today's date.
MONDAY = datetime(2031, 3, 3, 13, 0, tzinfo=UTC)


@pytest.fixture
def sandbox() -> None:
    """No sandbox server here: these tests never speak HTTP (overrides the autouse one)."""


@pytest.fixture
def backend() -> CalendarBackend:
    return CalendarBackend(stats=Stats(), schema=SCHEMA)


def body(start: datetime = MONDAY, hours: float = 1, **fields: Any) -> dict[str, Any]:
    return {
        "summary": "English class",
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(hours=hours)).isoformat()},
        **fields,
    }


def rendered(view: Any, method: str = "calendar.events.get") -> dict[str, Any]:
    resource = render.event(view)
    assert SCHEMA.validate_response(method, resource) == []
    return resource


def listing(backend: CalendarBackend, **options: Any) -> tuple[list[dict[str, Any]], Any]:
    page = backend.list_events(OWNER, "primary", **options)
    result = render.event_list(page)
    assert SCHEMA.validate_response("calendar.events.list", result) == []
    return result["items"], page


def test_insert_then_get_returns_the_stored_event(backend):
    inserted = backend.insert(OWNER, "primary", body(id="class0001"))

    got = rendered(backend.get(OWNER, ADMIN, "class0001"))

    assert inserted.id == "class0001"
    assert got["id"] == "class0001"
    assert got["status"] == "confirmed"
    assert got["summary"] == "English class"
    assert got["organizer"] == {"email": ADMIN, "self": True}
    assert got["start"] == {"dateTime": "2031-03-03T10:00:00-03:00"}  # the calendar's zone
    assert got["iCalUID"] == "class0001@google.com"
    assert got["reminders"] == {"useDefault": True}


def test_an_id_is_taken_once_and_other_users_cannot_write(backend):
    backend.insert(OWNER, "primary", body(id="class0001"))

    with pytest.raises(CalendarError) as duplicate:
        backend.insert(OWNER, "primary", body(id="class0001"))
    with pytest.raises(CalendarError) as foreign:
        backend.insert(STRANGER, ADMIN, body())
    with pytest.raises(CalendarError) as key_read:
        backend.get(API_KEY_CALLER, ADMIN, "class0001")

    assert (duplicate.value.status, duplicate.value.reason) == (409, "duplicate")
    assert (foreign.value.status, foreign.value.reason) == (404, "notFound")  # private: unseen
    assert key_read.value.status == 404


def test_a_public_calendar_is_read_by_anyone_and_written_by_its_owner_only(backend):
    backend.put_calendar(ADMIN, ADMIN, "UTC", public=True)
    backend.insert(OWNER, ADMIN, body(id="class0001"))

    seen = backend.get(API_KEY_CALLER, ADMIN, "class0001")
    with pytest.raises(CalendarError) as write:
        backend.patch(STRANGER, ADMIN, "class0001", {"summary": "mine"})

    assert rendered(seen)["start"] == {"dateTime": "2031-03-03T13:00:00Z"}
    assert (write.value.status, write.value.reason) == (403, "requiredAccessLevel")


def test_sync_token_lists_only_changes_and_delete_leaves_a_tombstone(backend):
    first = backend.insert(OWNER, "primary", body(id="class0001"))
    backend.insert(OWNER, "primary", body(MONDAY + timedelta(days=1), id="class0002"))
    items, page = listing(backend)
    assert [item["id"] for item in items] == ["class0001", "class0002"]
    assert page.next_page_token is None
    token = page.next_sync_token
    assert token is not None

    backend.delete(OWNER, "primary", "class0001", send_updates="all")
    backend.insert(OWNER, "primary", body(MONDAY + timedelta(days=2), id="class0003"))
    changes, page = listing(backend, sync_token=token)
    again, _ = listing(backend, sync_token=page.next_sync_token)
    plain, _ = listing(backend)
    tombstone = rendered(backend.get(OWNER, "primary", "class0001"))
    with pytest.raises(CalendarError) as twice:
        backend.delete(OWNER, "primary", "class0001")

    assert [(item["id"], item["status"]) for item in changes] == [
        ("class0001", "cancelled"),
        ("class0003", "confirmed"),
    ]
    assert again == []
    assert [item["id"] for item in plain] == ["class0002", "class0003"]  # tombstone hidden
    assert tombstone["status"] == "cancelled"
    assert tombstone["updated"] > render.event(first)["updated"]
    assert (twice.value.status, twice.value.reason) == (410, "deleted")
    assert backend.stats.snapshot()["send_updates"] == {"unset": 3, "all": 1}


def test_an_expired_or_foreign_sync_token_asks_for_a_full_sync(backend):
    backend.insert(OWNER, "primary", body())
    token = backend.list_events(OWNER, "primary").next_sync_token
    assert token is not None
    foreign = backend.list_events(STRANGER, "primary").next_sync_token

    assert backend.expire_sync_tokens(ADMIN) == 1
    with pytest.raises(CalendarError) as expired:
        backend.list_events(OWNER, "primary", sync_token=token)
    with pytest.raises(CalendarError) as other_calendar:
        backend.list_events(OWNER, "primary", sync_token=foreign)

    assert (expired.value.status, expired.value.reason) == (410, "fullSyncRequired")
    assert other_calendar.value.status == 410


def test_pages_follow_one_snapshot_and_the_last_one_carries_the_sync_token(backend):
    for day in range(5):
        backend.insert(OWNER, "primary", body(MONDAY + timedelta(days=day), id=f"class000{day}"))

    seen: list[str] = []
    page = backend.list_events(OWNER, "primary", max_results=2)
    backend.insert(OWNER, "primary", body(MONDAY + timedelta(days=9), id="class0009"))
    while True:
        seen += [view.id for view in page.items]
        if page.next_page_token is None:
            break
        assert page.next_sync_token is None
        page = backend.list_events(OWNER, "primary", max_results=2, page_token=page.next_page_token)
    changes = backend.list_events(OWNER, "primary", sync_token=page.next_sync_token)

    assert seen == [f"class000{day}" for day in range(5)]
    assert [view.id for view in changes.items] == ["class0009"]  # made while paging


def test_weekly_recurrence_keeps_its_wall_clock_time_across_daylight_saving(backend):
    # New York moves its clocks on Sunday 2031-03-09: 18:00 stays 18:00 local.
    recurring = {
        "summary": "Conversation club",
        "start": {"dateTime": "2031-03-03T18:00:00", "timeZone": "America/New_York"},
        "end": {"dateTime": "2031-03-03T19:00:00", "timeZone": "America/New_York"},
        "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4", "EXDATE:20310305T230000Z"],
        "id": "club00001",
    }
    backend.insert(OWNER, "primary", recurring)

    instances, _ = listing(
        backend, listing=ListQuery(single_events=True, order_by="startTime"), time_zone="UTC"
    )
    collapsed, _ = listing(backend)
    one = backend.get(OWNER, "primary", "club00001_20310310T220000Z", time_zone="UTC")
    with pytest.raises(CalendarError) as missing:
        backend.get(OWNER, "primary", "club00001_20310311T220000Z")
    with pytest.raises(CalendarError) as change_one:
        backend.patch(OWNER, "primary", "club00001_20310310T220000Z", {"summary": "moved"})

    # COUNT=4 counts the excluded Wednesday: Mon 3, (Wed 5), Mon 10, Wed 12.
    assert [item["start"]["dateTime"] for item in instances] == [
        "2031-03-03T23:00:00Z",
        "2031-03-10T22:00:00Z",
        "2031-03-12T22:00:00Z",
    ]
    assert [item["id"] for item in instances] == [
        "club00001_20310303T230000Z",
        "club00001_20310310T220000Z",
        "club00001_20310312T220000Z",
    ]
    assert all(item["recurringEventId"] == "club00001" for item in instances)
    assert [item["id"] for item in collapsed] == ["club00001"]
    assert collapsed[0]["recurrence"] == recurring["recurrence"]
    assert rendered(one)["originalStartTime"]["dateTime"] == "2031-03-10T22:00:00Z"
    assert missing.value.status == 404
    assert change_one.value.status == 400


def test_a_time_window_selects_overlapping_events_and_instances(backend):
    backend.insert(OWNER, "primary", body(id="first0001"))
    backend.insert(OWNER, "primary", body(MONDAY + timedelta(days=3), id="later0001"))
    backend.insert(
        OWNER,
        "primary",
        {
            "start": {"date": "2031-03-01"},
            "end": {"date": "2031-03-02"},
            "recurrence": ["RRULE:FREQ=DAILY;INTERVAL=2"],
            "id": "repeat001",
        },
    )
    window = ListQuery(
        time_min=MONDAY + timedelta(days=2),
        time_max=MONDAY + timedelta(days=4),
        single_events=True,
    )

    items, _ = listing(backend, listing=window)

    # Buenos Aires (UTC-3) is the calendar's zone: all-day instances run midnight to midnight.
    assert [item["id"] for item in items] == [
        "later0001",
        "repeat001_20310305",
        "repeat001_20310307",
    ]
    assert items[1]["start"] == {"date": "2031-03-05"}


def test_freebusy_merges_busy_periods_and_skips_transparent_and_cancelled(backend):
    backend.put_calendar(ADMIN, ADMIN, "UTC")
    backend.insert(OWNER, ADMIN, body(hours=2))
    backend.insert(OWNER, ADMIN, body(MONDAY + timedelta(hours=1), hours=2))
    backend.insert(OWNER, ADMIN, body(MONDAY + timedelta(hours=5), transparency="transparent"))
    backend.insert(OWNER, ADMIN, body(MONDAY + timedelta(hours=7), id="cancel001"))
    backend.delete(OWNER, ADMIN, "cancel001")

    results = backend.freebusy(OWNER, MONDAY, MONDAY + timedelta(days=1), [ADMIN, "x@y.test"])

    assert results[ADMIN].found
    assert results[ADMIN].busy == [(MONDAY, MONDAY + timedelta(hours=3))]
    assert not results["x@y.test"].found


def test_a_pending_conference_answers_pending_then_its_meet_link(backend):
    backend.set_conference_settings(ConferenceSettings(pending_reads=2))
    create = {
        "createRequest": {"requestId": "r1", "conferenceSolutionKey": {"type": "hangoutsMeet"}}
    }

    inserted = rendered(
        backend.insert(
            OWNER, "primary", body(id="meet00001", conferenceData=create), conference_version=1
        ),
        "calendar.events.insert",
    )
    dumped = backend.dump(ADMIN)  # the sandbox's own look uses up no read
    second = rendered(backend.get(OWNER, "primary", "meet00001"))
    third = rendered(backend.get(OWNER, "primary", "meet00001"))

    assert inserted["conferenceData"]["createRequest"]["status"] == {"statusCode": "pending"}
    assert dumped[0][1]["conference"]["pendingReadsLeft"] == 1
    assert second["conferenceData"]["createRequest"]["status"] == {"statusCode": "pending"}
    assert "hangoutLink" not in second
    assert third["conferenceData"]["createRequest"]["status"] == {"statusCode": "success"}
    assert (
        third["hangoutLink"] == f"https://meet.google.com/{third['conferenceData']['conferenceId']}"
    )


def test_authenticate_asks_the_token_source_and_refuses_unknown_tokens():
    tokens = {"ya29.good": (ADMIN, frozenset(READ_SCOPES))}
    backend = CalendarBackend(token_info=tokens.get, schema=SCHEMA)

    caller = backend.authenticate("ya29.good")
    with pytest.raises(CalendarError) as refused:
        backend.authenticate("ya29.unknown")
    with pytest.raises(CalendarError) as missing:
        backend.authenticate(None)

    assert caller == Caller(ADMIN, frozenset(READ_SCOPES))
    assert (refused.value.status, refused.value.reason) == (401, "authError")
    assert missing.value.status == 401


def test_every_change_waits_for_the_lock(backend):
    done = threading.Event()

    def insert() -> None:
        backend.insert(OWNER, "primary", body(id="class0001"))
        done.set()

    with backend.lock:
        worker = threading.Thread(target=insert)
        worker.start()
        blocked = not done.wait(0.3)
        assert backend.calendars == {}  # nothing changed while the lock was held
    worker.join(timeout=5)

    assert blocked
    assert done.is_set()
    assert list(backend.calendars[ADMIN].events) == ["class0001"]


def test_concurrent_inserts_get_distinct_change_numbers(backend):
    def insert_many(worker: int) -> None:
        for n in range(25):
            backend.insert(
                OWNER, "primary", body(MONDAY + timedelta(minutes=n), id=f"c{worker}e{n:04d}")
            )

    threads = [threading.Thread(target=insert_many, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    events = backend.calendars[ADMIN].events.values()
    assert sorted(e.change_seq for e in events) == list(range(1, 101))
    assert len(backend.list_events(OWNER, "primary", max_results=2500).items) == 100


def test_watch_sends_sync_then_exists_and_records_what_it_could_not_deliver(backend):
    # A non-loopback address: the sandbox never connects out, it records the attempt.
    channel = backend.watch(
        OWNER,
        "primary",
        {"id": "chan-1", "type": "web_hook", "address": "https://example.test/hook"},
    )
    backend.insert(OWNER, "primary", body())

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        deliveries = backend.channels()[0]["deliveries"]
        if len(deliveries) == 2:
            break
        time.sleep(0.02)
    with pytest.raises(CalendarError) as again:
        backend.watch(
            OWNER, "primary", {"id": "chan-1", "type": "web_hook", "address": "https://e.test/"}
        )
    backend.stop_channel(OWNER, "chan-1", channel.resource_id)
    backend.close()

    assert [(d["messageNumber"], d["state"], d["outcome"]) for d in deliveries] == [
        (1, "sync", "undeliverable"),
        (2, "exists", "undeliverable"),
    ]
    assert again.value.reason == "channelIdNotUnique"
    assert backend.channels() == []
    assert backend.stats.snapshot()["notifications"] == {"undeliverable": 2}


def test_all_day_events_are_dates_and_bad_bodies_are_refused(backend):
    view = backend.insert(
        OWNER, "primary", {"start": {"date": "2031-03-03"}, "end": {"date": "2031-03-04"}}
    )
    with pytest.raises(CalendarError) as mixed:
        backend.insert(OWNER, "primary", {"start": {"date": "2031-03-03"}, "end": body()["end"]})
    with pytest.raises(CalendarError) as backwards:
        backend.insert(OWNER, "primary", body(hours=-1))

    assert view.base.start == date(2031, 3, 3)
    assert rendered(view)["end"] == {"date": "2031-03-04"}
    assert mixed.value.status == 400
    assert (backwards.value.status, backwards.value.reason) == (400, "timeRangeEmpty")
