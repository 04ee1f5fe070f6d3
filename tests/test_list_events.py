"""list_events through functions-framework's real app, against the emulators and the sandbox.

list_events serves busy slots from classcal's Firestore mirror of the calendar only. Events
are created in the sandbox through the real Calendar API as the admin; the mirror is brought
in step the way a push notification does (``sync.sync_calendar()``), and the instance's
cache is forgotten (or its TTL waited out) before list_events reads again. The sandbox
counts every Calendar, OAuth and Secret Manager request, so "no Google call" is measured.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import functions_framework
import pytest

from localstack import processes
from localstack.constants import ADMIN_EMAIL
from shared.core.cache import SingleFlightCache
from shared.core.config import get_config, reset_config
from shared.core.errors import ClasscalError, InvalidParameter, StoreUnavailable
from shared.domain import busy_slots, maintenance, mirror, sync
from shared.google import calendar, clients, tokens
from shared.stores import busy_time, sync_state
from shared.stores import slots as slot_store
from tests.support.calendar_sync import (
    admin_calendar,
    move,
    scheduled_booking,
    webhook_lines,
)
from tests.support.scheduling import (
    app_client,
    deliver,
    deliver_until_acked,
    payment,
    read_booking,
    wait_for,
    write_abandoned_checkouts,
    write_booking,
)

SOURCE = str(Path(__file__).resolve().parent.parent / "functions" / "list_events" / "main.py")
SCHOOL = "America/Argentina/Buenos_Aires"
BA = ZoneInfo(SCHOOL)
SITE = "https://school.example"
READ_LINE = "read busy slots from the mirror"


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Every test starts as a fresh instance: the cache lives in the module."""
    busy_slots.reset_cache()
    yield
    busy_slots.reset_cache()


@pytest.fixture
def unsynced(connected: dict[str, Any], env: pytest.MonkeyPatch) -> Any:
    """list_events' real app, the admin connected, the calendar never synced."""
    env.setenv("ALLOWED_ORIGINS", SITE)
    reset_config()
    return functions_framework.create_app("list_events", SOURCE).test_client()


@pytest.fixture
def client(unsynced: Any) -> Any:
    """list_events' real app after the first full sync: the mirror exists."""
    sync.sync_calendar(full=True)
    return unsynced


def refresh() -> None:
    """What a push notification does (an incremental sync), then a fresh instance cache."""
    sync.sync_calendar()
    busy_slots.reset_cache()


def set_env(env: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        env.setenv(name, value)
    reset_config()


def calls(sandbox: Any, prefix: str) -> int:
    """Requests the sandbox has served whose name starts with ``prefix``."""
    return sum(n for name, n in sandbox.stats()["requests"].items() if name.startswith(prefix))


def google_calls(sandbox: Any) -> dict[str, int]:
    return {p: calls(sandbox, p) for p in ("calendar.", "secretmanager.", "oauth.")}


def reads(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for r in caplog.records if r.getMessage() == READ_LINE)


def tomorrow(hour: int = 10) -> datetime:
    return (datetime.now(BA) + timedelta(days=1)).replace(
        hour=hour, minute=0, second=0, microsecond=0
    )


def add_event(when: datetime, minutes: int = 60, **fields: Any) -> dict[str, Any]:
    """Create an event as the admin, through the real Calendar API (``fields`` win)."""
    end = when + timedelta(minutes=minutes)
    body: dict[str, Any] = {
        "summary": "Clase de Inglés",
        "start": {"dateTime": when.isoformat(), "timeZone": SCHOOL},
        "end": {"dateTime": end.isoformat(), "timeZone": SCHOOL},
        **fields,
    }
    return calendar.insert_event(body, send_updates="none")


def instants(slots: list[dict[str, Any]]) -> list[tuple[datetime, datetime]]:
    return [
        (
            datetime.fromisoformat(s["start"]["dateTime"]),
            datetime.fromisoformat(s["end"]["dateTime"]),
        )
        for s in slots
    ]


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- the response ---------------------------------------------------------------------------


def test_busy_slots_have_the_seeds_shape_in_the_school_zone_sorted_by_start(
    client: Any,
) -> None:
    day = tomorrow()
    add_event(day + timedelta(hours=4))
    # Written in another zone: it comes back as the same instant in the school's zone.
    utc_start = (day + timedelta(hours=1)).astimezone(UTC)
    add_event(
        day,
        start={"dateTime": utc_start.isoformat(), "timeZone": "Europe/London"},
        end={"dateTime": (utc_start + timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
    )
    add_event(day)
    refresh()

    response = client.get("/")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    slots = response.get_json()
    assert instants(slots) == [
        (day, day + timedelta(hours=1)),
        (day + timedelta(hours=1), day + timedelta(hours=2)),
        (day + timedelta(hours=4), day + timedelta(hours=5)),
    ]
    for slot in slots:
        assert set(slot) == {"start", "end", "status"}
        assert set(slot["start"]) == set(slot["end"]) == {"dateTime", "timeZone"}
        assert slot["start"]["timeZone"] == slot["end"]["timeZone"] == SCHOOL
        assert slot["start"]["dateTime"].endswith("-03:00")
        assert slot["status"] == "confirmed"


def test_nothing_but_start_end_and_status_leaves_the_function_or_enters_the_mirror(
    client: Any, firestore: Any
) -> None:
    marker = "PRIVATE-MARKER-7f3a"
    created = add_event(
        tomorrow(),
        summary=f"Clase {marker}",
        description=f"notes {marker}",
        location=f"room {marker}",
        attendees=[{"email": "student.private@example.test", "displayName": marker}],
        extendedProperties={"private": {"bookingId": f"booking-{marker}"}},
        conferenceData={
            "createRequest": {
                "requestId": "req-private-marker",
                "conferenceSolutionKey": {"type": "hangoutsMeet"},
            }
        },
    )
    refresh()

    response = client.get("/")

    text = response.get_data(as_text=True)
    assert len(response.get_json()) == 1
    for secret in (
        marker,
        "example.test",
        ADMIN_EMAIL,
        created["id"],
        created["iCalUID"],
        "meet.google.com",
        "http",
        "organizer",
        "transparency",
    ):
        assert secret not in text
    # The mirror itself keeps times and status; no title, attendee, link or notes.
    calendar_doc = firestore.collection(slot_store.CALENDARS).document("primary")
    stored = [
        s.to_dict()
        for name in (slot_store.DAYS, busy_time.INTERVALS)
        for s in calendar_doc.collection(name).stream()
    ]
    busy = [e for d in stored for e in (d.get("busy") or {}).values()]
    assert len(busy) == 1
    assert set(busy[0]) <= {"start", "end", "status", "bookingId"}
    mirrored = json.dumps(stored, default=str)
    for personal in (
        "Clase",
        "notes",
        "room",
        "student.private",
        "example.test",
        "meet.google.com",
        "http",
        "summary",
        "attendee",
        "description",
        "location",
        "hangoutLink",
        "conferenceData",
    ):
        assert personal not in mirrored


def test_cancelled_and_transparent_events_are_not_busy(client: Any) -> None:
    day = tomorrow()
    add_event(day)
    add_event(day + timedelta(hours=2), transparency="transparent")
    deleted = add_event(day + timedelta(hours=4))
    calendar.delete_event(deleted["id"], send_updates="none")
    add_event(day + timedelta(hours=6), status="tentative")
    refresh()

    slots = client.get("/").get_json()

    assert instants(slots) == [
        (day, day + timedelta(hours=1)),
        (day + timedelta(hours=6), day + timedelta(hours=7)),
    ]
    assert [s["status"] for s in slots] == ["confirmed", "tentative"]


@pytest.mark.parametrize(
    ("zone", "offset"),
    [(SCHOOL, "-03:00"), ("Asia/Kolkata", "+05:30")],
)
def test_an_all_day_event_is_busy_from_midnight_to_midnight_in_the_school_zone(
    client: Any, env: pytest.MonkeyPatch, zone: str, offset: str
) -> None:
    set_env(env, CALENDAR_TIMEZONE=zone)
    first = (datetime.now(ZoneInfo(zone)) + timedelta(days=3)).date()
    add_event(
        tomorrow(),
        start={"date": first.isoformat()},
        end={"date": (first + timedelta(days=2)).isoformat()},  # two days: end is exclusive
    )
    refresh()

    slots = client.get("/").get_json()

    assert slots == [
        {
            "start": {"dateTime": f"{first.isoformat()}T00:00:00{offset}", "timeZone": zone},
            "end": {
                "dateTime": f"{(first + timedelta(days=2)).isoformat()}T00:00:00{offset}",
                "timeZone": zone,
            },
            "status": "confirmed",
        }
    ]


def test_recurring_events_are_expanded_into_their_instances(client: Any) -> None:
    day = tomorrow(hour=18)
    add_event(day, recurrence=["RRULE:FREQ=DAILY;COUNT=5"])
    refresh()

    slots = client.get("/").get_json()

    assert instants(slots) == [
        (day + timedelta(days=n), day + timedelta(days=n, hours=1)) for n in range(5)
    ]


@pytest.mark.slow
def test_every_page_is_read(client: Any, sandbox: Any) -> None:
    # The mirror's full sync asks for Calendar's largest page (2500), so it takes more
    # than that to need a second page: 600 single events and 35 daily series of 58.
    first = tomorrow(hour=0)
    for n in range(600):
        add_event(first + timedelta(hours=2 * n), minutes=30)
    for n in range(35):
        add_event(
            first + timedelta(minutes=60 + 2 * n),
            minutes=1,
            recurrence=["RRULE:FREQ=DAILY;COUNT=58"],
        )
    result = sync.sync_calendar(full=True)  # the rebuild lists every page of the horizon
    busy_slots.reset_cache()
    before = google_calls(sandbox)

    response = client.get("/")

    slots = response.get_json()
    assert result.mirrored == 600 + 35 * 58
    assert len(slots) == 600 + 35 * 58
    singles = [first + timedelta(hours=2 * n) for n in range(600)]
    series = [first + timedelta(days=d, minutes=60 + 2 * n) for n in range(35) for d in range(58)]
    assert [start for start, _ in instants(slots)] == sorted(singles + series)
    assert google_calls(sandbox) == before


# --- the window ------------------------------------------------------------------------------


def test_time_min_and_time_max_narrow_the_window(client: Any) -> None:
    day = tomorrow()
    for n in range(3):
        add_event(day + timedelta(days=n))
    refresh()
    time_min = (day + timedelta(days=1)).replace(hour=0)
    time_max = time_min + timedelta(days=1)

    narrowed = client.get(
        f"/?timeMin={quote(time_min.isoformat())}&timeMax={quote(time_max.isoformat())}"
    )
    # An unencoded "+" arrives as a space; "Z" and other offsets name the same instant.
    spelled = client.get(
        f"/?timeMin={time_min.astimezone(ZoneInfo('Asia/Tokyo')).isoformat()}"
        f"&timeMax={utc_text(time_max)}"
    )
    from_only = client.get(f"/?timeMin={quote(time_min.isoformat())}")
    until_only = client.get(f"/?timeMax={quote(time_max.isoformat())}")

    assert {r.status_code for r in (narrowed, spelled, from_only, until_only)} == {200}
    assert instants(narrowed.get_json()) == [
        (day + timedelta(days=1), day + timedelta(days=1, hours=1))
    ]
    assert spelled.get_data() == narrowed.get_data()
    assert len(from_only.get_json()) == 2
    assert len(until_only.get_json()) == 2  # now .. timeMax: today's hour is tomorrow's


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("timeMin=yesterday", "timeMin"),
        ("timeMin=2030-03-10T10:00:00", "timeMin"),  # no offset
        ("timeMin=2030-03-10", "timeMin"),
        ("timeMin=2030-13-10T10:00:00Z", "timeMin"),
        ("timeMin=", "timeMin"),
        ("timeMin=" + "9" * 500, "timeMin"),
        ("timeMin=2030-03-10T10:00:00Z&timeMin=2030-03-11T10:00:00Z", "timeMin"),
        ("timeMax=2030-03-10T10:00:00+25:00", "timeMax"),
        ("timeMin=2030-03-10T10:00:00Z&timeMax=2030-03-10T10:00:00Z", "timeMax"),
        ("timeMin=2030-03-10T10:00:00Z&timeMax=2030-03-09T10:00:00Z", "timeMax"),
        ("timeMin=2030-01-01T00:00:00Z&timeMax=2030-04-02T00:00:01Z", "timeMax"),  # > 90 days
        ("timeMax=2001-01-01T00:00:00Z", "timeMax"),  # before now
        ("timeMax=2999-01-01T00:00:00Z", "timeMax"),  # now .. then is over 90 days
        ("timeMin=0001-01-01T00:00:00Z", "timeMin"),
    ],
)
def test_a_bad_window_gets_400_naming_the_parameter(
    client: Any, sandbox: Any, caplog: pytest.LogCaptureFixture, query: str, parameter: str
) -> None:
    caplog.set_level(logging.INFO)
    before = google_calls(sandbox)

    response = client.get(f"/?{query}", headers={"Origin": SITE})

    assert response.status_code == 400
    body = response.get_json()
    assert body["parameter"] == parameter
    assert body["reason"] == "invalid_parameter"
    assert parameter in body["error"]
    assert response.headers["Access-Control-Allow-Origin"] == SITE  # the page can read why
    assert google_calls(sandbox) == before
    assert reads(caplog) == 0  # a bad window is refused before anything is read


def test_a_window_of_exactly_90_days_is_accepted(client: Any) -> None:
    response = client.get("/?timeMin=2030-01-01T00:00:00Z&timeMax=2030-04-01T00:00:00Z")

    assert response.status_code == 200
    assert response.get_json() == []  # beyond the mirror's horizon: nothing busy there


# --- no query string multiplies reads ----------------------------------------------------


def test_hundreds_of_windows_make_no_google_call_and_one_firestore_read(
    client: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    day = tomorrow()
    add_event(day)
    add_event(day + timedelta(days=2))
    refresh()
    caplog.set_level(logging.INFO)
    before = google_calls(sandbox)
    base = datetime.now(UTC)
    queries = []
    for n in range(100):  # a timeMin a microsecond later each time, as an attacker would
        queries.append(f"/?timeMin={quote((base + timedelta(microseconds=n)).isoformat())}")
    for n in range(100):  # only timeMax
        queries.append(f"/?timeMax={utc_text(base + timedelta(days=2, seconds=n))}")
    for n in range(100):  # both, every pair different
        low = base + timedelta(minutes=n)
        queries.append(f"/?timeMin={utc_text(low)}&timeMax={utc_text(low + timedelta(days=5))}")
    queries += [f"/?_={n}" for n in range(20)]  # cache busters

    responses = [client.get(q) for q in queries]

    assert {r.status_code for r in responses} == {200}
    assert google_calls(sandbox) == before  # no Calendar, Secret Manager or OAuth request
    assert reads(caplog) == 1
    assert len(responses[0].get_json()) == 2
    assert len(responses[150].get_json()) == 1  # now .. two days later: tomorrow's only
    assert len(responses[250].get_json()) == 2


def test_the_mirror_is_read_again_once_per_ttl(
    client: Any, env: pytest.MonkeyPatch, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    set_env(env, LIST_CACHE_TTL_SECONDS="0.5")
    add_event(tomorrow())
    sync.sync_calendar()
    caplog.set_level(logging.INFO)
    before = google_calls(sandbox)

    first = [client.get(f"/?_={n}") for n in range(30)]
    reads_in_first_ttl = reads(caplog)
    time.sleep(0.6)
    second = [client.get(f"/?_={n}") for n in range(30)]

    assert reads_in_first_ttl == 1
    assert reads(caplog) == 2
    assert {r.status_code for r in first + second} == {200}
    assert google_calls(sandbox) == before
    max_ages = [int(r.headers["Cache-Control"].split("max-age=")[1]) for r in first]
    assert max_ages[0] == 0  # 0.5 s of freshness is 0 whole seconds
    assert all(0 <= age <= 1 for age in max_ages)


def test_fifty_requests_within_the_ttl_share_one_read_and_one_answer(
    client: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    add_event(tomorrow())
    refresh()
    caplog.set_level(logging.INFO)

    responses = [client.get("/") for _ in range(50)]

    assert reads(caplog) == 1
    assert {r.status_code for r in responses} == {200}
    assert len({r.get_data() for r in responses}) == 1
    assert len({r.headers["ETag"] for r in responses}) == 1
    max_ages = [int(r.headers["Cache-Control"].split("max-age=")[1]) for r in responses]
    assert all(0 <= age <= 30 for age in max_ages)
    assert responses[0].headers["Cache-Control"] == "public, max-age=29"


@pytest.mark.slow
def test_concurrent_misses_on_a_real_server_share_one_read(
    client: Any, sandbox: Any, tmp_path: Path
) -> None:
    add_event(tomorrow())
    add_event(tomorrow(hour=12))
    refresh()
    server = processes.start_function("list_events", {"LOG_LEVEL": "INFO"}, tmp_path)
    try:
        before = google_calls(sandbox)
        barrier = threading.Barrier(20)
        results: list[tuple[int, bytes]] = []
        base = datetime.now(UTC)

        def fetch(n: int) -> None:
            # Each asks for a different window: none can be answered from another's entry.
            window = quote((base + timedelta(microseconds=n)).isoformat())
            barrier.wait()
            results.append(processes.http("GET", f"{server.url}/?timeMin={window}"))

        threads = [threading.Thread(target=fetch, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        lines = [line for line in webhook_lines(server) if line.get("message") == READ_LINE]
    finally:
        server.stop()

    assert [status for status, _ in results] == [200] * 20
    assert len({body for _, body in results}) == 1
    assert len(json.loads(results[0][1])) == 2
    assert len(lines) == 1
    assert lines[0]["busy"] == 2
    assert google_calls(sandbox) == before


# --- what is busy: holds, claims, the mirror --------------------------------------------


def test_a_pending_checkout_is_tentative_until_its_hold_expires(
    client: Any, firestore: Any, env: pytest.MonkeyPatch
) -> None:
    set_env(env, HOLD_MINUTES="15")
    now = datetime.now(UTC)
    start = tomorrow(hour=9).astimezone(UTC)
    write_booking(firestore, start=start, createdAt=now - timedelta(minutes=5))
    write_booking(
        firestore, start=start + timedelta(hours=3), createdAt=now - timedelta(minutes=16)
    )

    slots = client.get("/").get_json()

    assert instants(slots) == [(start, start + timedelta(hours=1))]
    assert slots[0]["status"] == "tentative"
    assert slots[0]["start"]["timeZone"] == SCHOOL


def test_a_live_checkout_shows_behind_a_thousand_abandoned_ones(
    client: Any, firestore: Any, env: pytest.MonkeyPatch
) -> None:
    set_env(env, HOLD_MINUTES="15")
    write_abandoned_checkouts(firestore, 1000)  # never paid, for classes already over
    start = tomorrow(hour=9).astimezone(UTC)
    write_booking(firestore, start=start, createdAt=datetime.now(UTC) - timedelta(minutes=5))

    slots = client.get("/").get_json()

    assert instants(slots) == [(start, start + timedelta(hours=1))]
    assert slots[0]["status"] == "tentative"


def test_a_live_checkout_with_rfc3339_times_shows(
    client: Any, firestore: Any, env: pytest.MonkeyPatch
) -> None:
    set_env(env, HOLD_MINUTES="15")
    start = tomorrow(hour=9).astimezone(UTC)
    checkout = write_booking(
        firestore, start=start, createdAt=datetime.now(UTC) - timedelta(minutes=5)
    )
    firestore.collection("virtualClasses").document(checkout.booking_id).update(
        {
            "startTime": start.astimezone(BA).isoformat(),
            "endTime": (start + timedelta(hours=1)).isoformat(),
        }
    )

    slots = client.get("/").get_json()

    assert instants(slots) == [(start, start + timedelta(hours=1))]
    assert slots[0]["status"] == "tentative"


def test_hold_minutes_zero_shows_no_checkout(
    client: Any, firestore: Any, env: pytest.MonkeyPatch
) -> None:
    set_env(env, HOLD_MINUTES="0")
    write_booking(firestore, start=tomorrow().astimezone(UTC), createdAt=datetime.now(UTC))

    assert client.get("/").get_json() == []


def test_a_paid_booking_being_scheduled_appears_once_then_its_event_once(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    start = tomorrow(hour=14).astimezone(UTC)
    paid = write_booking(firestore, start=start, createdAt=datetime.now(UTC))
    creator = app_client()
    sandbox.fault(method="POST", path=r"/events$", status=503, count=20)
    assert deliver(creator, payment(paid.preference_id)) == 500  # waits; Pub/Sub redelivers
    assert read_booking(firestore, paid.booking_id)["schedulingState"] == "waiting"

    claimed = client.get("/").get_json()

    sandbox.clear_faults()
    deliver_until_acked(creator, payment(paid.preference_id))
    assert read_booking(firestore, paid.booking_id)["status"] == "scheduled"
    busy_slots.reset_cache()
    scheduled_not_yet_mirrored = client.get("/").get_json()
    refresh()
    mirrored = client.get("/").get_json()

    expected = [(start, start + timedelta(hours=1))]
    # Claimed (its hold and its claim are one slot), no event yet: tentative.
    assert instants(claimed) == expected
    assert claimed[0]["status"] == "tentative"
    # Scheduled, the mirror not yet told: the claim alone, once.
    assert instants(scheduled_not_yet_mirrored) == expected
    # The event mirrored: the event once, not the event and the claim.
    assert instants(mirrored) == expected
    assert mirrored[0]["status"] == "confirmed"


def test_a_scheduled_class_whose_event_is_mirrored_appears_once(
    client: Any, firestore: Any
) -> None:
    class_ = scheduled_booking(firestore)
    refresh()

    slots = client.get("/").get_json()

    assert instants(slots) == [(class_.start, class_.end)]
    assert slots[0]["status"] == "confirmed"


@pytest.mark.slow
def test_an_event_created_moved_or_deleted_in_the_sandbox_follows_after_sync_and_ttl(
    client: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    set_env(env, LIST_CACHE_TTL_SECONDS="0.3")
    day = tomorrow()
    before = client.get("/").get_json()

    created = add_event(day)
    cached = client.get("/").get_json()  # within the TTL and before the sync: unchanged
    sync.sync_calendar()
    time.sleep(0.4)
    after_create = client.get("/").get_json()

    moved_to, _ = move(admin_calendar(sandbox), created["id"], timedelta(hours=5))
    sync.sync_calendar()
    time.sleep(0.4)
    after_move = client.get("/").get_json()

    calendar.delete_event(created["id"], send_updates="none")
    sync.sync_calendar()
    time.sleep(0.4)
    after_delete = client.get("/").get_json()

    assert before == cached == []
    assert instants(after_create) == [(day, day + timedelta(hours=1))]
    assert instants(after_move) == [(moved_to, moved_to + timedelta(hours=1))]
    assert after_delete == []


# --- freshness ---------------------------------------------------------------------------


def test_before_the_first_sync_ever_it_is_503_with_retry_after(
    unsynced: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    before = google_calls(sandbox)

    response = unsynced.get("/", headers={"Origin": SITE})

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 5
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    assert response.get_json() == {
        "error": "busy slots are unavailable right now; try again shortly",
        "reason": "unavailable",
    }
    assert "X-Classcal-Synced-At" not in response.headers
    assert google_calls(sandbox) == before  # list_events never syncs itself
    warnings = [r for r in caplog.records if getattr(r, "reason", None) == "mirror_not_ready"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING

    sync.sync_calendar(full=True)
    busy_slots.reset_cache()
    assert unsynced.get("/").status_code == 200


def test_every_answer_says_when_the_mirror_was_last_synced(client: Any) -> None:
    synced_at = sync_state.sync_status("primary")["syncedAt"]

    response = client.get("/")
    not_modified = client.get("/", headers={"If-None-Match": response.headers["ETag"]})

    assert response.status_code == 200
    assert response.headers["X-Classcal-Synced-At"] == utc_text(synced_at)
    assert not_modified.headers["X-Classcal-Synced-At"] == utc_text(synced_at)
    assert "X-Classcal-Stale" not in response.headers
    assert "Warning" not in response.headers
    age = datetime.now(UTC) - synced_at
    assert timedelta(0) <= age < timedelta(minutes=1)


def test_an_old_sync_makes_the_answer_stale_with_one_warning(
    client: Any, firestore: Any, env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    set_env(env, MIRROR_MAX_AGE_MINUTES="90")
    add_event(tomorrow())
    sync.sync_calendar()
    fresh = client.get("/")
    old = (datetime.now(UTC) - timedelta(minutes=91)).replace(microsecond=0)
    firestore.collection(sync_state.SYNC).document("primary").set({"syncedAt": old}, merge=True)
    busy_slots.reset_cache()
    caplog.set_level(logging.INFO)

    stale = client.get("/")
    again = client.get("/")

    assert fresh.status_code == stale.status_code == again.status_code == 200
    assert "X-Classcal-Stale" not in fresh.headers
    assert fresh.headers["Cache-Control"] == "public, max-age=29"
    for response in (stale, again):
        assert response.headers["X-Classcal-Stale"] == "true"
        assert response.headers["Warning"] == '110 - "Response is Stale"'
        assert response.headers["Cache-Control"] == "public, max-age=0"
        assert response.headers["X-Classcal-Synced-At"] == utc_text(old)
    assert "Age" not in stale.headers
    assert stale.get_data() == fresh.get_data()  # stale, still the mirror's slots
    assert stale.headers["ETag"] == fresh.headers["ETag"]
    warnings = [r for r in caplog.records if getattr(r, "reason", None) == "mirror_stale"]
    assert len(warnings) == 1  # one per read, and the second answer came from the cache
    assert warnings[0].levelno == logging.WARNING
    assert "91 minutes" in warnings[0].getMessage()


def test_a_sync_just_within_the_max_age_is_not_stale(
    client: Any, firestore: Any, env: pytest.MonkeyPatch
) -> None:
    set_env(env, MIRROR_MAX_AGE_MINUTES="90")
    recent = datetime.now(UTC) - timedelta(minutes=89)
    firestore.collection(sync_state.SYNC).document("primary").set({"syncedAt": recent}, merge=True)

    response = client.get("/")

    assert response.status_code == 200
    assert "X-Classcal-Stale" not in response.headers
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    assert response.headers["Cache-Control"] != "public, max-age=0"


def _firestore_goes_away(env: pytest.MonkeyPatch) -> None:
    """Point the instance at a port where nothing listens, as if Firestore were down."""
    env.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{processes.free_port()}")
    reset_config()
    clients.reset_clients()


@pytest.mark.slow
def test_when_firestore_fails_the_last_horizon_is_served_stale(
    client: Any, env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    set_env(env, LIST_CACHE_TTL_SECONDS="0.2")
    add_event(tomorrow())
    sync.sync_calendar()
    fresh = client.get("/")
    time.sleep(0.3)
    caplog.set_level(logging.INFO)
    reads_before = reads(caplog)
    _firestore_goes_away(env)

    stale = client.get("/")

    assert fresh.status_code == stale.status_code == 200
    assert reads(caplog) == reads_before  # the read failed: the earlier one is served
    assert "X-Classcal-Stale" not in fresh.headers
    assert stale.headers["X-Classcal-Stale"] == "true"
    assert stale.headers["Warning"] == '110 - "Response is Stale"'
    assert stale.headers["Cache-Control"] == "public, max-age=0"
    assert stale.headers["X-Classcal-Synced-At"] == fresh.headers["X-Classcal-Synced-At"]
    assert stale.get_data() == fresh.get_data()
    assert len(stale.get_json()) == 1
    assert stale.headers["ETag"] == fresh.headers["ETag"]


@pytest.mark.slow
def test_without_an_earlier_read_a_firestore_failure_is_503_with_retry_after(
    client: Any, env: pytest.MonkeyPatch, sandbox: Any
) -> None:
    set_env(env, LIST_CACHE_TTL_SECONDS="7")
    _firestore_goes_away(env)
    before = google_calls(sandbox)

    started = time.monotonic()
    failed = client.get("/", headers={"Origin": SITE})
    took = time.monotonic() - started
    remembered = client.get("/")

    assert failed.status_code == remembered.status_code == 503
    assert took < 20  # seconds, not the client library's minute per read
    assert failed.headers["Retry-After"] == "7"  # the failure is remembered for the TTL
    assert failed.headers["Cache-Control"] == "no-store"
    assert failed.headers["Access-Control-Allow-Origin"] == SITE
    assert failed.get_json() == {
        "error": "busy slots are unavailable right now; try again shortly",
        "reason": "unavailable",
    }
    assert "Traceback" not in failed.get_data(as_text=True)
    assert google_calls(sandbox) == before


# --- caching and HTTP ------------------------------------------------------------------------


def test_a_matching_etag_gets_304(client: Any) -> None:
    add_event(tomorrow())
    refresh()
    first = client.get("/")
    etag = first.headers["ETag"]

    same = client.get("/", headers={"If-None-Match": etag})
    listed = client.get("/", headers={"If-None-Match": f'"other", W/{etag}'})
    other = client.get("/", headers={"If-None-Match": '"something-else"'})

    assert etag.startswith('"')
    assert etag.endswith('"')
    assert same.status_code == listed.status_code == 304
    assert same.get_data() == b""
    assert same.headers["ETag"] == etag
    assert same.headers["Cache-Control"].startswith("public, max-age=")
    assert other.status_code == 200
    assert other.get_data() == first.get_data()


def test_the_etag_follows_the_content(client: Any, env: pytest.MonkeyPatch) -> None:
    set_env(env, LIST_CACHE_TTL_SECONDS="0")
    add_event(tomorrow())
    sync.sync_calendar()
    first = client.get("/")
    unchanged = client.get("/")
    add_event(tomorrow(hour=15))
    sync.sync_calendar()

    changed = client.get("/", headers={"If-None-Match": first.headers["ETag"]})

    assert unchanged.headers["ETag"] == first.headers["ETag"]
    assert changed.status_code == 200
    assert changed.headers["ETag"] != first.headers["ETag"]
    assert len(changed.get_json()) == 2


def test_cors_headers_go_to_an_allowed_origin_only(client: Any) -> None:
    allowed = client.get("/", headers={"Origin": SITE})
    other = client.get("/", headers={"Origin": "https://evil.example"})
    none = client.get("/")

    assert allowed.headers["Access-Control-Allow-Origin"] == SITE
    exposed = allowed.headers["Access-Control-Expose-Headers"]
    for header in ("ETag", "Warning", "Retry-After", "X-Classcal-Stale", "X-Classcal-Synced-At"):
        assert header in exposed  # the booking page can read freshness cross-origin
    for response in (allowed, other, none):
        assert response.status_code == 200
        assert response.headers["Vary"] == "Origin"
    assert not [h for h, _ in other.headers if h.startswith("Access-Control-")]
    assert "Access-Control-Allow-Origin" not in none.headers


def test_a_wildcard_allows_every_origin(client: Any, env: pytest.MonkeyPatch) -> None:
    set_env(env, ALLOWED_ORIGINS="*")

    response = client.get("/", headers={"Origin": "https://anyone.example"})

    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_a_preflight_is_answered_without_reading_anything(
    client: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    before = google_calls(sandbox)
    request_headers = {"Access-Control-Request-Method": "GET"}

    allowed = client.options("/", headers={"Origin": SITE, **request_headers})
    other = client.options("/", headers={"Origin": "https://evil.example", **request_headers})

    assert allowed.status_code == other.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == SITE
    assert allowed.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"
    assert "If-None-Match" in allowed.headers["Access-Control-Allow-Headers"]
    assert int(allowed.headers["Access-Control-Max-Age"]) > 0
    assert not [h for h, _ in other.headers if h.startswith("Access-Control-")]
    assert google_calls(sandbox) == before
    assert reads(caplog) == 0


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_other_methods_get_405(
    client: Any, sandbox: Any, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    caplog.set_level(logging.INFO)
    before = google_calls(sandbox)

    response = client.open("/", method=method, headers={"Origin": SITE})

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert response.get_json()["reason"] == "method_not_allowed"
    assert google_calls(sandbox) == before
    assert reads(caplog) == 0


def test_head_answers_like_get_without_a_body(client: Any) -> None:
    add_event(tomorrow())
    refresh()
    got = client.get("/")

    head = client.head("/")

    assert head.status_code == 200
    assert head.get_data() == b""
    assert head.headers["ETag"] == got.headers["ETag"]
    assert head.headers["X-Classcal-Synced-At"] == got.headers["X-Classcal-Synced-At"]


# --- credentials: list_events needs none ---------------------------------------------------


def test_a_revoked_admin_token_does_not_affect_list_events(
    client: Any, sandbox: Any, connected: dict[str, Any]
) -> None:
    add_event(tomorrow())
    refresh()
    sandbox_url = get_config().google_sandbox_url
    status, _ = processes.http("POST", f"{sandbox_url}/revoke?token={connected['refresh_token']}")
    assert status == 200
    before = google_calls(sandbox)

    response = client.get("/")

    assert response.status_code == 200
    assert len(response.get_json()) == 1
    assert google_calls(sandbox) == before  # no oauth.token, no Calendar, no Secret Manager
    # The grant really is gone: what does need Google (the sync) now fails.
    tokens.forget_admin_credentials()
    with pytest.raises(ClasscalError):
        sync.sync_calendar()


def test_calendar_api_key_is_ignored_with_one_warning(
    client: Any, sandbox: Any, env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    add_event(tomorrow())
    refresh()
    set_env(env, CALENDAR_API_KEY="sandbox-api-key")
    before = google_calls(sandbox)

    responses = [client.get(f"/?_={n}") for n in range(5)]

    assert {r.status_code for r in responses} == {200}
    assert len(responses[0].get_json()) == 1
    assert google_calls(sandbox) == before
    ignored = [r for r in caplog.records if "CALENDAR_API_KEY" in r.getMessage()]
    assert len(ignored) == 1
    assert ignored[0].levelno == logging.WARNING
    assert "ignored" in ignored[0].getMessage()
    assert "sandbox-api-key" not in ignored[0].getMessage()


# --- through the real push path ----------------------------------------------------------


@pytest.mark.slow
def test_an_event_created_in_google_shows_after_its_push_notification(
    client: Any, webhook_server: Any, env: pytest.MonkeyPatch
) -> None:
    set_env(env, CALENDAR_WEBHOOK_URL=webhook_server.url, LIST_CACHE_TTL_SECONDS="1")
    result = maintenance.MaintenanceResult()
    maintenance.ensure_channel(result)
    assert result.channels_created == 1
    assert client.get("/").get_json() == []
    day = tomorrow(hour=16)

    add_event(day)  # the sandbox pushes to the running webhook, which syncs the mirror

    shown = wait_for(
        lambda: client.get("/").get_json(),
        timeout=1 + 20,  # the TTL plus a generous notification delay
        what="the new event in list_events",
    )
    assert instants(shown) == [(day, day + timedelta(hours=1))]


# --- the rules, without HTTP ---------------------------------------------------------------


def test_busy_interval_rules() -> None:
    zone = ZoneInfo("America/Santiago")
    timed = {
        "start": {"dateTime": "2030-01-01T10:00:00Z"},
        "end": {"dateTime": "2030-01-01T11:00:00Z"},
    }

    assert mirror.busy_interval({**timed, "status": "cancelled"}, zone) is None
    assert mirror.busy_interval({**timed, "transparency": "transparent"}, zone) is None
    assert mirror.busy_interval({**timed, "transparency": "opaque"}, zone) is not None
    # Chile skipped 2023-09-03 00:00 (DST): the day starts at 01:00 -03:00 that day.
    all_day = mirror.busy_interval(
        {"start": {"date": "2023-09-03"}, "end": {"date": "2023-09-04"}}, zone
    )
    assert all_day is not None
    assert all_day[0].isoformat() == "2023-09-03T01:00:00-03:00"
    with pytest.raises(ValueError, match="ends before"):
        mirror.busy_interval({"start": timed["end"], "end": timed["start"]}, zone)
    with pytest.raises(ValueError, match="no start"):
        mirror.busy_interval({"end": timed["end"]}, zone)
    # What the mirror keeps of an event: times, status, the booking; nothing personal.
    busy = mirror.busy_of(
        {
            **timed,
            "id": "ev1",
            "status": "tentative",
            "summary": "private",
            "extendedProperties": {"private": {"bookingId": "b-1"}},
        },
        zone,
    )
    assert busy is not None
    assert busy.stored() == {
        "start": datetime(2030, 1, 1, 10, tzinfo=UTC),
        "end": datetime(2030, 1, 1, 11, tzinfo=UTC),
        "status": "tentative",
        "bookingId": busy.booking_id,
    }
    assert mirror.busy_of({**timed, "id": "a/b"}, zone) is None  # not a document id
    assert mirror.busy_of({**timed, "id": "ev2", "end": timed["start"]}, zone) is None


def test_parse_window_defaults() -> None:
    now = datetime(2030, 1, 1, 12, tzinfo=UTC)

    default = busy_slots.parse_window({"_": ["cache-buster"]}, window_days=60, now=now)
    only_min = busy_slots.parse_window(
        {"timeMin": ["2030-02-01T00:00:00Z"]}, window_days=7, now=now
    )
    only_max = busy_slots.parse_window(
        {"timeMax": ["2030-01-02T00:00:00Z"]}, window_days=7, now=now
    )

    assert default == busy_slots.Window(now, now + timedelta(days=60), default=True)
    assert only_min.time_max == datetime(2030, 2, 8, tzinfo=UTC)
    assert (only_max.time_min, only_max.default) == (now, False)
    with pytest.raises(InvalidParameter) as raised:
        busy_slots.parse_window({"timeMax": ["2029-01-01T00:00:00Z"]}, window_days=7, now=now)
    assert raised.value.parameter == "timeMax"


def test_concurrent_waiters_share_one_failure() -> None:
    cache = SingleFlightCache()
    calls_made: list[int] = []
    release = threading.Event()

    def load() -> Any:
        calls_made.append(1)
        release.wait(5)
        raise StoreUnavailable("down")

    outcomes: list[str] = []

    def ask() -> None:
        try:
            cache.get("key", 30.0, load)
        except StoreUnavailable as error:
            outcomes.append(error.message)

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    release.set()
    for thread in threads:
        thread.join(5)

    assert len(calls_made) == 1
    assert outcomes == ["down"] * 10


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_failed_reload_serves_the_last_value_stale_with_its_real_age() -> None:
    clock = _Clock()
    cache = SingleFlightCache(clock=clock, stale_limit=100.0)
    loads: list[int] = []

    def good() -> str:
        loads.append(1)
        return "horizon"

    def bad() -> str:
        loads.append(1)
        raise StoreUnavailable("firestore down")

    fresh = cache.get("k", 30.0, good)
    clock.now += 10
    cached = cache.get("k", 30.0, bad)
    clock.now += 25  # 35 s after the load: past the TTL, Firestore fails
    stale = cache.get("k", 30.0, bad)
    clock.now += 5  # the failure is remembered for the TTL: no new load
    remembered = cache.get("k", 30.0, bad)
    clock.now += 100  # past the stale limit: the failure itself
    with pytest.raises(StoreUnavailable):
        cache.get("k", 30.0, bad)

    assert (fresh.value, fresh.stale, fresh.age, fresh.fresh_for) == ("horizon", False, 0.0, 30.0)
    assert (cached.value, cached.stale, cached.age, cached.fresh_for) == (
        "horizon",
        False,
        10.0,
        20.0,
    )
    assert (stale.value, stale.stale, stale.age, stale.fresh_for) == ("horizon", True, 35.0, 0.0)
    assert (remembered.stale, remembered.age) == (True, 40.0)
    assert len(loads) == 3  # good, the failing reload, and the one past the stale limit


def test_a_failure_without_an_earlier_value_is_raised_and_remembered_for_the_ttl() -> None:
    clock = _Clock()
    cache = SingleFlightCache(clock=clock)
    loads: list[int] = []

    def bad() -> str:
        loads.append(1)
        raise StoreUnavailable("firestore down")

    for _ in range(3):
        with pytest.raises(StoreUnavailable):
            cache.get("k", 30.0, bad)
    clock.now += 31
    recovered = cache.get("k", 30.0, lambda: "horizon")

    assert len(loads) == 1
    assert recovered.value == "horizon"
    assert not recovered.stale


def test_the_horizon_is_cut_into_windows_in_memory() -> None:
    base = datetime(2030, 1, 1, 10, tzinfo=UTC)
    horizon = busy_slots.Horizon(
        tuple(
            slot_store.Slot(
                base + timedelta(hours=h), base + timedelta(hours=h + 1), "confirmed", None
            )
            for h in (0, 2, 4)
        ),
        synced_at=base,
    )
    touching = busy_slots.Window(base + timedelta(hours=1), base + timedelta(hours=2))
    inside = busy_slots.Window(base + timedelta(hours=2, minutes=30), base + timedelta(hours=3))

    assert busy_slots.render(horizon, touching, BA).slots == 0  # touching is not overlapping
    cut = busy_slots.render(horizon, inside, BA)
    assert cut.slots == 1
    assert json.loads(cut.body)[0]["start"]["dateTime"] == "2030-01-01T09:00:00-03:00"
    assert cut == busy_slots.render(horizon, inside, BA)  # deterministic ETag
