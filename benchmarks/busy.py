"""Section ``busy``: list_events under concurrent load, cached and uncached, against bare.

Three functions-framework servers run side by side: list_events as deployed (the
default ``LIST_CACHE_TTL_SECONDS``), list_events with ``LIST_CACHE_TTL_SECONDS=0``
(every request reads the calendar's Firestore mirror; concurrent misses still share one
read, which is the single flight and not a cache), and the bare hello that returns a
constant. Each gets
``requests`` GETs of the default window from ``clients`` threads, each thread on its
own keep-alive connection. The load comes in rounds, each server in turn with the
order rotating, so machine noise hits all three alike; only one server is loaded at a
time, which also lets the sandbox's request counters say which one called Google:
since busy slots come from the mirror, neither list_events server may call it at all.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections.abc import Mapping
from typing import Any

from benchmarks import common
from localstack import processes

ROUNDS = 4
CACHED = "list_events"
UNCACHED = "list_events_uncached"
BARE = common.BARE


def _load(url: str, total: int, clients: int) -> dict[str, Any]:
    """``total`` GETs of ``/`` from ``clients`` threads, each with its own keep-alive connection."""
    port = int(url.rsplit(":", 1)[1])
    lock = threading.Lock()
    issued = 0
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    bodies: list[bytes] = []
    ready = threading.Barrier(clients + 1)

    def client() -> None:
        nonlocal issued
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.connect()  # before the clock starts
        mine: list[float] = []
        seen: dict[str, int] = {}
        body = b""
        ready.wait()
        while True:
            with lock:
                if issued >= total:
                    break
                issued += 1
            started = time.perf_counter()
            try:
                connection.request("GET", "/", headers={"Accept": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                status = str(response.status)
                if response.status == 200:
                    body = answer
            except (OSError, http.client.HTTPException):
                status = "0"  # no answer: the connection broke
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine.append(time.perf_counter() - started)
            seen[status] = seen.get(status, 0) + 1
        connection.close()
        with lock:
            latencies.extend(mine)
            for status, count in seen.items():
                statuses[status] = statuses.get(status, 0) + count
            if body:
                bodies.append(body)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return {"latencies": latencies, "statuses": statuses, "bodies": bodies, "wall": wall}


def _counts(after: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, int]:
    return {
        "list": common.delta(after, before, common.LIST),
        "token": common.delta(after, before, common.TOKEN),
        "secret": common.delta(after, before, common.SECRET_READ),
    }


def _add(total: dict[str, int], more: Mapping[str, int]) -> None:
    for key, value in more.items():
        total[key] = total.get(key, 0) + value


def run(lab: common.Lab, requests: int, clients: int, events: int) -> dict[str, Any]:
    lab.reset()
    lab.connect_admin()
    common.say(f"  busy: {events} events in the calendar, starting three servers ...")
    common.seed_calendar(events)
    from shared.domain import sync

    sync.sync_calendar(full=True)  # the mirror list_events serves from
    control = lab.control
    env = lab.env()
    from shared.core.config import from_env

    ttl = from_env(env).list_cache_ttl_seconds  # what the cached server runs with
    started: dict[str, processes.ManagedProcess] = {}
    # Calls made while starting (the start-up probe reads the calendar) and warming up.
    setup: dict[str, dict[str, int]] = {}
    timed: dict[str, dict[str, int]] = {name: {} for name in (CACHED, UNCACHED, BARE)}
    loads: dict[str, list[dict[str, Any]]] = {name: [] for name in timed}
    spans: dict[str, tuple[float, float]] = {}
    try:
        for name, extra in ((CACHED, {}), (UNCACHED, {"LIST_CACHE_TTL_SECONDS": "0"})):
            before = control.stats()
            started[name] = lab.start_function("list_events", {**env, **extra}, tag=f"busy-{name}")
            _load(started[name].url, 4 * clients, clients)  # every thread and connection used
            setup[name] = _counts(control.stats(), before)
        before = control.stats()
        started[BARE] = lab.start_function(BARE, env, tag="busy-bare")
        _load(started[BARE].url, 4 * clients, clients)
        setup[BARE] = _counts(control.stats(), before)

        common.say(f"  busy: {requests} requests per server from {clients} clients ...")
        order = [CACHED, UNCACHED, BARE]
        share = [requests // ROUNDS + (r < requests % ROUNDS) for r in range(ROUNDS)]
        for r in range(ROUNDS):
            for name in order[r % 3 :] + order[: r % 3]:
                before = control.stats()
                begun = time.monotonic()
                loads[name].append(_load(started[name].url, share[r], clients))
                first, _ = spans.get(name, (begun, 0.0))
                spans[name] = (first, time.monotonic())
                _add(timed[name], _counts(control.stats(), before))
    finally:
        for process in started.values():
            process.stop()

    servers = {name: _summary(loads[name], timed[name], setup[name]) for name in timed}
    bare = servers[BARE]
    for figures in servers.values():
        figures["throughput_ratio_to_bare"] = round(
            figures["requests_per_second"] / bare["requests_per_second"], 3
        )
        figures["median_ratio_to_bare"] = round(figures["median_ms"] / bare["median_ms"], 2)
        figures["p99_ratio_to_bare"] = round(figures["p99_ms"] / bare["p99_ms"], 2)

    cached_body = _last_body(loads[CACHED])
    uncached_body = _last_body(loads[UNCACHED])
    span = spans[CACHED][1] - spans[CACHED][0]
    return {
        "requests_per_server": requests,
        "clients": clients,
        "rounds": ROUNDS,
        "events": events,
        "busy_slots": len(json.loads(cached_body)) if cached_body else None,
        "cached_and_uncached_agree": cached_body == uncached_body,
        "cache_ttl_seconds": ttl,
        "cached_span_seconds": round(span, 1),
        # One read per TTL that the cached server's rounds spanned, and one more.
        "cached_list_calls_allowed": math.ceil(span / ttl) + 1,
        "servers": servers,
    }


def _summary(
    loads: list[dict[str, Any]], calls: Mapping[str, int], setup: Mapping[str, int]
) -> dict[str, Any]:
    latencies = [latency for load in loads for latency in load["latencies"]]
    statuses: dict[str, int] = {}
    for load in loads:
        _add(statuses, load["statuses"])
    wall = sum(load["wall"] for load in loads)
    count = len(latencies)
    return {
        "requests": count,
        "non_200": count - statuses.get("200", 0),
        "statuses": dict(sorted(statuses.items())),
        "requests_per_second": round(count / wall, 1) if wall else 0.0,
        "median_ms": round(common.median(latencies) * 1000, 2),
        "p99_ms": round(common.percentile(latencies, 0.99) * 1000, 2),
        "calendar_list_calls": calls.get("list", 0),
        "list_calls_per_request": round(calls.get("list", 0) / count, 4) if count else 0.0,
        "token_refreshes": calls.get("token", 0) + setup.get("token", 0),
        "secret_reads": calls.get("secret", 0) + setup.get("secret", 0),
        "calendar_list_calls_at_start_and_warm_up": setup.get("list", 0),
    }


def _last_body(loads: list[dict[str, Any]]) -> bytes:
    bodies = [body for load in loads for body in load["bodies"]]
    return bodies[-1] if bodies else b""


def problems(figures: Mapping[str, Any]) -> list[str]:
    """Correctness only (never timing): every answer a 200 with every slot, the cache used."""
    found = []
    for name, data in figures["servers"].items():
        if data["non_200"]:
            found.append(f"busy: {name} gave {data['non_200']} non-200 answers: {data['statuses']}")
        if data["requests"] != figures["requests_per_server"]:
            found.append(f"busy: {name} answered {data['requests']} requests")
    if figures["busy_slots"] != figures["events"]:
        found.append(
            f"busy: list_events listed {figures['busy_slots']} busy slots, "
            f"the calendar has {figures['events']} events"
        )
    if not figures["cached_and_uncached_agree"]:
        found.append("busy: the cached and uncached servers answered differently")
    for name in (CACHED, UNCACHED):
        data = figures["servers"][name]
        google = {k: data[k] for k in ("calendar_list_calls", "token_refreshes", "secret_reads")}
        google["at_start"] = data["calendar_list_calls_at_start_and_warm_up"]
        if any(google.values()):
            found.append(f"busy: {name} called Google while serving busy slots: {google}")
    return found
