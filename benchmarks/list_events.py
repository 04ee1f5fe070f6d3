"""Section ``list_events``: one client's latency, cached and uncached, as ratios to bare.

Three real functions-framework servers: list_events with the cache on
(``LIST_CACHE_TTL_SECONDS=3600``), list_events with ``LIST_CACHE_TTL_SECONDS=0`` (every
request reads the calendar's mirror in Firestore), and the bare hello (returns a
constant). The mirror is filled first by a full sync, as the admin's connection does.
The sandbox counts the Calendar, token and Secret Manager requests made during the
timed load: list_events must make none. Requests are interleaved round by round over
one keep-alive connection per
server, so machine noise hits all three alike. ``busy`` is the same comparison under
concurrent load.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from benchmarks import common
from localstack import processes

CACHED = "list_events, cached"
UNCACHED = "list_events, uncached"
BARE = "bare function"


def _connect(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def _timed_get(connection: http.client.HTTPConnection) -> tuple[float, bytes]:
    started = time.perf_counter()
    connection.request("GET", "/")
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"GET / answered {response.status}: {body[:200]!r}")
    return elapsed, body


def _summary(samples: list[float], baseline: float) -> dict[str, float]:
    ordered = sorted(samples)
    median = statistics.median(ordered)
    return {
        "median_ms": round(median * 1000, 3),
        "p90_ms": round(ordered[int(len(ordered) * 0.9)] * 1000, 3),
        "ratio_to_bare": round(median / baseline, 2),
    }


def run(lab: common.Lab, events: int, rounds: int, warmup: int) -> dict[str, Any]:
    lab.reset()
    lab.connect_admin()
    common.say(f"  list_events: {events} events in the calendar, {rounds} rounds ...")
    common.seed_calendar(events)
    from shared.domain import sync

    sync.sync_calendar(full=True)  # the mirror list_events serves from
    env = lab.env()
    servers: dict[str, processes.ManagedProcess] = {}
    try:
        servers[BARE] = lab.start_function(common.BARE, env, tag="list-bare")
        servers[CACHED] = lab.start_function(
            "list_events", {**env, "LIST_CACHE_TTL_SECONDS": "3600"}, tag="list-cached"
        )
        servers[UNCACHED] = lab.start_function(
            "list_events", {**env, "LIST_CACHE_TTL_SECONDS": "0"}, tag="list-uncached"
        )
        connections = {name: _connect(p.url) for name, p in servers.items()}
        bodies: dict[str, bytes] = {}
        # Interleaved too: a connection left idle for 2 s is closed by gunicorn.
        for _ in range(warmup):
            for name in list(connections):
                try:
                    bodies[name] = _timed_get(connections[name])[1]
                except (http.client.RemoteDisconnected, ConnectionResetError):
                    # gunicorn closes a connection idle for 2 s: on a loaded machine a
                    # first (cold) request elsewhere can take that long. Warm-up only.
                    connections[name].close()
                    connections[name] = _connect(servers[name].url)
                    bodies[name] = _timed_get(connections[name])[1]
        samples: dict[str, list[float]] = {name: [] for name in servers}
        before = lab.control.stats()
        for _ in range(rounds):
            for name, connection in connections.items():
                samples[name].append(_timed_get(connection)[0])
        after = lab.control.stats()
        for connection in connections.values():
            connection.close()
    finally:
        for process in servers.values():
            process.stop()

    baseline = statistics.median(samples[BARE])
    return {
        "events": events,
        "busy_slots": len(json.loads(bodies[CACHED])),
        "cached_and_uncached_agree": bodies[CACHED] == bodies[UNCACHED],
        "rounds": rounds,
        "targets": {name: _summary(s, baseline) for name, s in samples.items()},
        "google_calls_during_load": {
            "calendar": sum(
                common.delta(after, before, key)
                for key in after["requests"]
                if key.startswith("calendar.")
            ),
            "token": common.delta(after, before, common.TOKEN),
            "secret_manager": common.delta(after, before, common.SECRET_READ),
        },
    }


def problems(figures: Mapping[str, Any]) -> list[str]:
    """Correctness only: both servers list every class, and the same slots."""
    found = []
    google = figures["google_calls_during_load"]
    if any(google.values()):
        found.append(f"list_events: called Google while serving busy slots: {google}")
    if not figures["cached_and_uncached_agree"]:
        found.append("list_events: the cached and uncached servers disagree")
    if figures["busy_slots"] != figures["events"]:
        found.append(
            f"list_events: {figures['busy_slots']} busy slots listed, "
            f"the calendar has {figures['events']} events"
        )
    return found
