"""Section ``guard``: what the slot guard costs, and how fast the mirror follows Google.

1. Two create_event servers, the same code, one with the slot guard (the default) and
   one with ``SLOT_GUARD=off``; approved payments for bookings at distinct times are
   posted to both, interleaved booking by booking, so machine noise hits both alike.
   The median per booking with the guard is reported as a ratio to the one without.
2. A clash: as many pairs of bookings for the same hour, both paid at once; each pair
   must end with one class scheduled and one ``slot_taken``, one event in the calendar.
3. From a change to the page: calendar_webhook and list_events run as servers, the
   watch channel is created by maintenance, and events are created one by one in the
   sandbox's calendar (as the admin would in Google Calendar). The time from each
   insert to list_events listing it (through the push notification, the sync and the
   list cache's TTL) gives the median and p90; the same for a deletion leaving.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from benchmarks import common
from benchmarks.create_event import _Poster

TAG = "guard"
LIST_TTL_SECONDS = 1.0
POLL_SECONDS = 0.05


def _get(url: str, path: str) -> list[dict[str, Any]]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"list_events answered {response.status}: {body[:200]!r}")
    return list(json.loads(body))


def _window(start: datetime) -> str:
    low = quote((start - timedelta(minutes=1)).isoformat())
    high = quote((start + timedelta(hours=2)).isoformat())
    return f"/?timeMin={low}&timeMax={high}"


def _shows(slots: list[dict[str, Any]], start: datetime) -> bool:
    return any(datetime.fromisoformat(s["start"]["dateTime"]) == start for s in slots)


def _until(done: Any, timeout: float = 60.0) -> float:
    began = time.perf_counter()
    while not done():
        if time.perf_counter() - began > timeout:
            raise common.Failed(f"guard: a change did not reach list_events in {timeout} s")
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - began


def _cost(lab: common.Lab, bookings: int) -> dict[str, Any]:
    client = lab.db()
    guarded = lab.start_function("create_event", lab.env(LOG_LEVEL="WARNING"), tag="guard-on")
    unguarded = lab.start_function(
        "create_event", lab.env(LOG_LEVEL="WARNING", SLOT_GUARD="off"), tag="guard-off"
    )
    try:
        warm = common.write_bookings(client, 2, f"{TAG}-warm")
        with_guard = common.write_bookings(client, bookings, f"{TAG}-on")
        without = common.write_bookings(client, bookings, f"{TAG}-off")
        on, off = _Poster(guarded.url), _Poster(unguarded.url)
        on.post(warm[0].preference_id)
        off.post(warm[1].preference_id)
        on_times: list[float] = []
        off_times: list[float] = []
        for first, second in zip(with_guard, without, strict=True):
            on_times.append(on.post(first.preference_id))
            off_times.append(off.post(second.preference_id))
    finally:
        guarded.stop()
        unguarded.stop()
    scheduled = common.count_scheduled(client, f"{TAG}-on") + common.count_scheduled(
        client, f"{TAG}-off"
    )
    on_median, off_median = statistics.median(on_times), statistics.median(off_times)
    return {
        "bookings_each": bookings,
        "scheduled": scheduled,
        "median_ms_with_guard": round(on_median * 1000, 2),
        "median_ms_without_guard": round(off_median * 1000, 2),
        "p90_ms_with_guard": round(statistics.quantiles(on_times, n=10)[-1] * 1000, 2),
        "p90_ms_without_guard": round(statistics.quantiles(off_times, n=10)[-1] * 1000, 2),
        "guard_ratio": round(on_median / off_median, 3),
    }


def _clashes(lab: common.Lab, pairs: int) -> dict[str, Any]:
    client = lab.db()
    function = lab.start_function("create_event", lab.env(LOG_LEVEL="WARNING"), tag="guard-pairs")
    before = lab.control.stats()
    outcomes: dict[str, int] = {}
    try:
        for n in range(pairs):
            first = common.write_bookings(client, 1, f"{TAG}-pair{n}a")[0]
            # The same time as the first: a second booking written at the same start.
            data = client.collection("virtualClasses").document(first.booking_id).get().to_dict()
            second_id = f"{TAG}-pair{n}b"
            client.collection("virtualClasses").document(second_id).set(
                {**data, "preferenceId": f"pref-{second_id}"}
            )
            barrier = threading.Barrier(2)
            acknowledged: dict[str, bool] = {}
            preference_ids = (first.preference_id, f"pref-{second_id}")

            def pay(
                preference_id: str,
                barrier: threading.Barrier = barrier,
                acknowledged: dict[str, bool] = acknowledged,
            ) -> None:
                poster = _Poster(function.url)
                barrier.wait()
                try:
                    poster.post(preference_id)
                    acknowledged[preference_id] = True
                except RuntimeError:  # not acknowledged (the rival held the hour's claim)
                    acknowledged[preference_id] = False

            threads = [threading.Thread(target=pay, args=(p,)) for p in preference_ids]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            for preference_id in preference_ids:
                if not acknowledged.get(preference_id):
                    # Pub/Sub would redeliver: so do we, until acknowledged.
                    for _ in range(40):
                        try:
                            _Poster(function.url).post(preference_id)
                            break
                        except RuntimeError:
                            time.sleep(0.1)
            for booking_id in (first.booking_id, second_id):
                stored = client.collection("virtualClasses").document(booking_id).get().to_dict()
                key = (
                    stored.get("status")
                    if stored.get("status") == "scheduled"
                    else (stored.get("schedulingReason") or "other")
                )
                outcomes[key] = outcomes.get(key, 0) + 1
    finally:
        function.stop()
    inserts = common.delta(lab.control.stats(), before, common.INSERT)
    return {"pairs": pairs, "outcomes": outcomes, "events_inserted": inserts}


def _follow(lab: common.Lab, changes: int) -> dict[str, Any]:
    from shared.domain import maintenance, sync
    from shared.google import calendar

    webhook = lab.start_function("calendar_webhook", lab.env(), tag="guard-webhook")
    listing = lab.start_function(
        "list_events", lab.env(LIST_CACHE_TTL_SECONDS=str(LIST_TTL_SECONDS)), tag="guard-list"
    )
    appear: list[float] = []
    leave: list[float] = []
    before = lab.control.stats()
    try:
        lab.point_here(CALENDAR_WEBHOOK_URL=webhook.url)
        sync.sync_calendar(full=True)
        maintenance.run()  # the watch channel, pointed at the webhook server
        first = (datetime.now(UTC) + timedelta(days=5)).replace(minute=0, second=0, microsecond=0)
        for n in range(changes):
            start = first + timedelta(hours=3 * n)
            path = _window(start)
            began = time.perf_counter()  # from the change in Google to the page showing it
            event = calendar.insert_event(
                {
                    "summary": "Staff meeting",
                    "start": {"dateTime": start.isoformat()},
                    "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
                },
                send_updates="none",
            )
            _until(lambda path=path, start=start: _shows(_get(listing.url, path), start))
            appear.append(time.perf_counter() - began)
            began = time.perf_counter()
            calendar.delete_event(str(event["id"]), send_updates="none")
            _until(lambda path=path, start=start: not _shows(_get(listing.url, path), start))
            leave.append(time.perf_counter() - began)
        after = lab.control.stats()
    finally:
        webhook.stop()
        listing.stop()
    return {
        "changes": changes,
        "list_cache_ttl_seconds": LIST_TTL_SECONDS,
        "appear_median_ms": round(statistics.median(appear) * 1000),
        "appear_p90_ms": round(common.percentile(appear, 0.9) * 1000),
        "leave_median_ms": round(statistics.median(leave) * 1000),
        "leave_p90_ms": round(common.percentile(leave, 0.9) * 1000),
        "calendar_calls": {
            k: common.delta(after, before, k) for k in after["requests"] if k.startswith("calendar")
        },
    }


def run(lab: common.Lab, bookings: int, pairs: int, changes: int) -> dict[str, Any]:
    lab.reset()
    lab.connect_admin()
    # Meet ready in the insert's answer: a pending conference would add the same wait
    # (CONFERENCE_POLL_DELAYS' first delay) to both servers and shrink the ratio towards
    # 1; the create_event section measures that wait on its own.
    lab.control.set_conference(pending_reads=0)
    common.say(f"  guard: {bookings} bookings each with and without the guard ...")
    cost = _cost(lab, bookings)
    common.say(f"  guard: {pairs} pairs of payments for the same hour, at once ...")
    clashes = _clashes(lab, pairs)
    common.say(f"  guard: {changes} calendar changes followed to list_events ...")
    follow = _follow(lab, changes)
    return {"cost": cost, "clashes": clashes, "follow": follow}


def problems(figures: Mapping[str, Any]) -> list[str]:
    """Correctness only: every unclashed booking scheduled, each pair one and one."""
    found = []
    cost = figures["cost"]
    if cost["scheduled"] != 2 * cost["bookings_each"]:
        found.append(f"guard: {cost['scheduled']} of {2 * cost['bookings_each']} scheduled")
    clashes = figures["clashes"]
    wanted = {"scheduled": clashes["pairs"], "slot_taken": clashes["pairs"]}
    if clashes["outcomes"] != wanted:
        found.append(f"guard: pairs for one hour ended {clashes['outcomes']}, not {wanted}")
    if clashes["events_inserted"] != clashes["pairs"]:
        found.append(f"guard: {clashes['events_inserted']} events for {clashes['pairs']} hours")
    return found
