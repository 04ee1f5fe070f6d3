"""list_events through functions-framework's real app, against the Google sandbox.

Events are created in the sandbox through the real Calendar API as the admin; the
function reads them back through its own credentials, as it does in production.
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
from shared import busy_slots, calendar
from shared.config import get_config, reset_config
from shared.errors import GoogleUnavailable, InvalidParameter
from shared.logs import JsonFormatter

SOURCE = str(Path(__file__).resolve().parent.parent / "functions" / "list_events" / "main.py")
SCHOOL = "America/Argentina/Buenos_Aires"
BA = ZoneInfo(SCHOOL)
SITE = "https://school.example"


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Every test starts as a fresh instance: the cache lives in the module."""
    busy_slots.reset_cache()
    yield
    busy_slots.reset_cache()


@pytest.fixture
def client(connected: dict[str, Any], env: pytest.MonkeyPatch) -> Any:
    env.setenv("ALLOWED_ORIGINS", SITE)
    reset_config()
    return functions_framework.create_app("list_events", SOURCE).test_client()


def set_env(env: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        env.setenv(name, value)
    reset_config()


def list_calls(sandbox: Any) -> int:
    return int(sandbox.stats()["requests"].get("calendar.events.list", 0))


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


def test_nothing_but_start_end_and_status_leaves_the_function(client: Any) -> None:
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


def test_cancelled_and_transparent_events_are_not_busy(client: Any) -> None:
    day = tomorrow()
    add_event(day)
    add_event(day + timedelta(hours=2), transparency="transparent")
    deleted = add_event(day + timedelta(hours=4))
    calendar.delete_event(deleted["id"], send_updates="none")
    add_event(day + timedelta(hours=6), status="tentative")

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

    slots = client.get("/").get_json()

    assert instants(slots) == [
        (day + timedelta(days=n), day + timedelta(days=n, hours=1)) for n in range(5)
    ]


@pytest.mark.slow
def test_every_page_is_read(client: Any, sandbox: Any) -> None:
    # The function asks for Calendar's largest page (2500), so it takes more than that
    # to need a second page: 600 single events and 35 daily series of 58 classes.
    first = tomorrow(hour=0)
    for n in range(600):
        add_event(first + timedelta(hours=2 * n), minutes=30)
    for n in range(35):
        add_event(
            first + timedelta(minutes=60 + 2 * n),
            minutes=1,
            recurrence=["RRULE:FREQ=DAILY;COUNT=58"],
        )

    response = client.get("/")

    slots = response.get_json()
    assert list_calls(sandbox) == 2
    assert len(slots) == 600 + 35 * 58
    singles = [first + timedelta(hours=2 * n) for n in range(600)]
    series = [first + timedelta(days=d, minutes=60 + 2 * n) for n in range(35) for d in range(58)]
    assert [start for start, _ in instants(slots)] == sorted(singles + series)


# --- the window ------------------------------------------------------------------------------


def test_time_min_and_time_max_narrow_the_window(client: Any) -> None:
    day = tomorrow()
    for n in range(3):
        add_event(day + timedelta(days=n))
    time_min = (day + timedelta(days=1)).replace(hour=0)
    time_max = time_min + timedelta(days=1)

    narrowed = client.get(
        f"/?timeMin={quote(time_min.isoformat())}&timeMax={quote(time_max.isoformat())}"
    )
    # An unencoded "+" arrives as a space; "Z" and other offsets name the same instant.
    spelled = client.get(
        f"/?timeMin={time_min.astimezone(ZoneInfo('Asia/Tokyo')).isoformat()}"
        f"&timeMax={time_max.astimezone(UTC).isoformat().replace('+00:00', 'Z')}"
    )
    from_only = client.get(f"/?timeMin={quote(time_min.isoformat())}")

    assert narrowed.status_code == spelled.status_code == from_only.status_code == 200
    assert instants(narrowed.get_json()) == [
        (day + timedelta(days=1), day + timedelta(days=1, hours=1))
    ]
    assert spelled.get_data() == narrowed.get_data()
    assert len(from_only.get_json()) == 2


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
    client: Any, sandbox: Any, query: str, parameter: str
) -> None:
    response = client.get(f"/?{query}", headers={"Origin": SITE})

    assert response.status_code == 400
    body = response.get_json()
    assert body["parameter"] == parameter
    assert body["reason"] == "invalid_parameter"
    assert parameter in body["error"]
    assert response.headers["Access-Control-Allow-Origin"] == SITE  # the page can read why
    assert list_calls(sandbox) == 0


def test_a_window_of_exactly_90_days_is_accepted(client: Any) -> None:
    response = client.get("/?timeMin=2030-01-01T00:00:00Z&timeMax=2030-04-01T00:00:00Z")

    assert response.status_code == 200


# --- caching -------------------------------------------------------------------------------


def test_fifty_requests_within_the_ttl_cost_one_calendar_call(client: Any, sandbox: Any) -> None:
    add_event(tomorrow())

    responses = [client.get("/") for _ in range(50)]

    assert list_calls(sandbox) == 1
    assert {r.status_code for r in responses} == {200}
    assert len({r.get_data() for r in responses}) == 1
    assert len({r.headers["ETag"] for r in responses}) == 1
    max_ages = [int(r.headers["Cache-Control"].split("max-age=")[1]) for r in responses]
    assert all(0 <= age <= 30 for age in max_ages)
    assert responses[0].headers["Cache-Control"] == "public, max-age=29"


def test_each_distinct_window_is_cached_on_its_own(client: Any, sandbox: Any) -> None:
    base = "/?timeMin=2030-01-01T00:00:00Z&timeMax=2030-01-0{}T00:00:00Z"

    for _ in range(3):
        client.get(base.format(2))
        client.get(base.format(3))
        client.get("/?timeMin=2029-12-31T21:00:00-03:00&timeMax=2030-01-02T00:00:00Z")

    assert list_calls(sandbox) == 2


@pytest.mark.slow
def test_concurrent_misses_on_a_real_server_share_one_calendar_call(
    connected: dict[str, Any], sandbox: Any, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    add_event(tomorrow())
    window = quote(tomorrow(hour=0).isoformat())  # not the default window the probe cached
    server = processes.start_function("list_events", {}, tmp_path)
    try:
        before = list_calls(sandbox)
        # Hold Google's answer so every request arrives while the first read is in flight.
        sandbox.fault("calendar.events.list", r"/events$", 0, delay=0.5)
        barrier = threading.Barrier(20)
        results: list[tuple[int, bytes]] = []

        def fetch() -> None:
            barrier.wait()
            results.append(processes.http("GET", f"{server.url}/?timeMin={window}"))

        threads = [threading.Thread(target=fetch) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        server.stop()

    assert [status for status, _ in results] == [200] * 20
    assert len({body for _, body in results}) == 1
    assert len(json.loads(results[0][1])) == 1
    assert list_calls(sandbox) - before == 1


def test_a_matching_etag_gets_304(client: Any, sandbox: Any) -> None:
    add_event(tomorrow())
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
    first = client.get("/")
    unchanged = client.get("/")
    add_event(tomorrow(hour=15))

    changed = client.get("/", headers={"If-None-Match": first.headers["ETag"]})

    assert unchanged.headers["ETag"] == first.headers["ETag"]
    assert changed.status_code == 200
    assert changed.headers["ETag"] != first.headers["ETag"]
    assert len(changed.get_json()) == 2


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503, "reason": "backendError"},
        {"status": 429, "reason": "rateLimitExceeded"},
        {"status": 0, "reason": None, "delay": 1.0},  # slower than the 0.3 s socket timeout
    ],
    ids=["503", "429", "timeout"],
)
def test_when_google_fails_the_last_result_is_served_stale(
    client: Any, sandbox: Any, env: pytest.MonkeyPatch, fault: dict[str, Any]
) -> None:
    set_env(env, LIST_CACHE_TTL_SECONDS="0.2")
    set_env(env, GOOGLE_HTTP_TIMEOUT_SECONDS="0.3")
    add_event(tomorrow())
    asked = time.monotonic()
    fresh = client.get("/")
    read = time.monotonic()  # the served result was read from Google between these two
    add_event(tomorrow(hour=15))  # a change the failing read cannot see
    time.sleep(1.0)  # past the TTL, and long enough for a whole second of Age
    sandbox.fault(
        "calendar.events.list",
        r"/events$",
        fault["status"],
        fault["reason"],
        delay=fault.get("delay"),
    )

    asked_again = time.monotonic()
    stale = client.get("/")
    answered = time.monotonic()

    assert fresh.status_code == stale.status_code == 200
    assert "X-Classcal-Stale" not in fresh.headers
    assert stale.headers["X-Classcal-Stale"] == "true"
    assert stale.headers["Warning"] == '110 - "Response is Stale"'
    # Age: whole seconds since the served result was read, as this test's clock saw it.
    assert int(asked_again - read) <= int(stale.headers["Age"]) <= int(answered - asked)
    assert int(stale.headers["Age"]) >= 1
    assert stale.headers["Cache-Control"] == "public, max-age=0"
    assert stale.get_data() == fresh.get_data()
    assert stale.headers["ETag"] == fresh.headers["ETag"]


def test_without_a_cached_result_a_google_failure_is_503_with_retry_after(
    client: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    set_env(env, LIST_CACHE_TTL_SECONDS="0.5")
    add_event(tomorrow())
    sandbox.fault("calendar.events.list", r"/events$", 503, "backendError")

    failed = client.get("/", headers={"Origin": SITE})
    remembered = client.get("/")
    calls_while_remembered = list_calls(sandbox)
    time.sleep(0.6)
    recovered = client.get("/")

    assert failed.status_code == remembered.status_code == 503
    assert int(failed.headers["Retry-After"]) >= 1
    assert failed.headers["Cache-Control"] == "no-store"
    assert failed.headers["Access-Control-Allow-Origin"] == SITE
    assert failed.get_json() == {
        "error": "busy slots are unavailable right now; try again shortly",
        "reason": "unavailable",
    }
    assert calls_while_remembered == 1  # the failure is remembered for the TTL
    assert recovered.status_code == 200
    assert len(recovered.get_json()) == 1


def test_a_revoked_admin_token_is_503_and_an_error_log_without_traceback(
    client: Any, sandbox: Any, connected: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    sandbox_url = get_config().google_sandbox_url
    status, _ = processes.http("POST", f"{sandbox_url}/revoke?token={connected['refresh_token']}")
    assert status == 200
    caplog.set_level(logging.INFO)

    response = client.get("/")

    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert "Traceback" not in response.get_data(as_text=True)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "admin must reconnect" in errors[0].getMessage()
    assert errors[0].exc_info is None
    line = JsonFormatter().format(errors[0])
    assert "Traceback" not in line
    assert connected["refresh_token"] not in line
    assert json.loads(line)["severity"] == "ERROR"


# --- HTTP ----------------------------------------------------------------------------------


def test_cors_headers_go_to_an_allowed_origin_only(client: Any) -> None:
    allowed = client.get("/", headers={"Origin": SITE})
    other = client.get("/", headers={"Origin": "https://evil.example"})
    none = client.get("/")

    assert allowed.headers["Access-Control-Allow-Origin"] == SITE
    assert "ETag" in allowed.headers["Access-Control-Expose-Headers"]
    for response in (allowed, other, none):
        assert response.status_code == 200
        assert response.headers["Vary"] == "Origin"
    assert not [h for h, _ in other.headers if h.startswith("Access-Control-")]
    assert "Access-Control-Allow-Origin" not in none.headers


def test_a_wildcard_allows_every_origin(client: Any, env: pytest.MonkeyPatch) -> None:
    set_env(env, ALLOWED_ORIGINS="*")

    response = client.get("/", headers={"Origin": "https://anyone.example"})

    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_a_preflight_is_answered_without_reading_google(client: Any, sandbox: Any) -> None:
    request_headers = {"Access-Control-Request-Method": "GET"}

    allowed = client.options("/", headers={"Origin": SITE, **request_headers})
    other = client.options("/", headers={"Origin": "https://evil.example", **request_headers})

    assert allowed.status_code == other.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == SITE
    assert allowed.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"
    assert "If-None-Match" in allowed.headers["Access-Control-Allow-Headers"]
    assert int(allowed.headers["Access-Control-Max-Age"]) > 0
    assert not [h for h, _ in other.headers if h.startswith("Access-Control-")]
    assert list_calls(sandbox) == 0


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_other_methods_get_405(client: Any, sandbox: Any, method: str) -> None:
    response = client.open("/", method=method, headers={"Origin": SITE})

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert response.get_json()["reason"] == "method_not_allowed"
    assert list_calls(sandbox) == 0


def test_head_answers_like_get_without_a_body(client: Any) -> None:
    add_event(tomorrow())
    got = client.get("/")

    head = client.head("/")

    assert head.status_code == 200
    assert head.get_data() == b""
    assert head.headers["ETag"] == got.headers["ETag"]


# --- credentials ---------------------------------------------------------------------------


def test_an_api_key_reads_a_public_calendar_without_the_admins_token(
    client: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    calendar_id = "school-public@group.calendar.google.test"
    sandbox.add_calendar(calendar_id, ADMIN_EMAIL, public=True)
    set_env(env, CALENDAR_ID=calendar_id)
    add_event(tomorrow())
    set_env(env, CALENDAR_API_KEY="sandbox-api-key")
    before = sandbox.stats()["requests"]

    response = client.get("/")

    after = sandbox.stats()["requests"]
    assert response.status_code == 200
    assert len(response.get_json()) == 1
    for credential_call in ("oauth.token", "secretmanager.projects.secrets.versions.access"):
        assert after.get(credential_call, 0) == before.get(credential_call, 0)


def test_an_api_key_on_a_private_calendar_is_503_and_a_clear_error_log(
    client: Any, sandbox: Any, env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calendar_id = "school-private@group.calendar.google.test"
    sandbox.add_calendar(calendar_id, ADMIN_EMAIL, public=False)
    set_env(env, CALENDAR_ID=calendar_id, CALENDAR_API_KEY="sandbox-api-key")

    response = client.get("/")

    assert response.status_code == 503
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "CALENDAR_API_KEY" in errors[0]
    assert "public" in errors[0]


# --- the rules, without HTTP ---------------------------------------------------------------


def test_busy_interval_rules() -> None:
    zone = ZoneInfo("America/Santiago")
    timed = {
        "start": {"dateTime": "2030-01-01T10:00:00Z"},
        "end": {"dateTime": "2030-01-01T11:00:00Z"},
    }

    assert busy_slots.busy_interval({**timed, "status": "cancelled"}, zone) is None
    assert busy_slots.busy_interval({**timed, "transparency": "transparent"}, zone) is None
    assert busy_slots.busy_interval({**timed, "transparency": "opaque"}, zone) is not None
    # Chile skipped 2023-09-03 00:00 (DST): the day starts at 01:00 -03:00 that day.
    all_day = busy_slots.busy_interval(
        {"start": {"date": "2023-09-03"}, "end": {"date": "2023-09-04"}}, zone
    )
    assert all_day is not None
    assert all_day[0].isoformat() == "2023-09-03T01:00:00-03:00"
    with pytest.raises(ValueError, match="ends before"):
        busy_slots.busy_interval({"start": timed["end"], "end": timed["start"]}, zone)
    with pytest.raises(ValueError, match="no start"):
        busy_slots.busy_interval({"end": timed["end"]}, zone)


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
    cache = busy_slots.SingleFlightCache()
    calls: list[int] = []
    release = threading.Event()

    def load() -> busy_slots.Payload:
        calls.append(1)
        release.wait(5)
        raise GoogleUnavailable("down")

    outcomes: list[str] = []

    def ask() -> None:
        try:
            cache.get("key", 30.0, load)
        except GoogleUnavailable as error:
            outcomes.append(error.message)

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    release.set()
    for thread in threads:
        thread.join(5)

    assert len(calls) == 1
    assert outcomes == ["down"] * 10
