"""Section ``cold``: from spawning functions-framework to the first successful answer.

Every function in ``functions/`` and the bare hello (``benchmarks/bare``) is started
``runs`` times under functions-framework, exactly as ``localstack.processes`` starts
it. The clock runs from just before the spawn to the end of the first answer to a
request that function really gets (an HTTP GET or POST, or a Pub/Sub push CloudEvent)
that is not a 5xx; the first request pays for whatever the function imports and builds
lazily (Firestore, Secret Manager, the Calendar client, the token refresh), which is
what a user of a freshly started instance waits for. Then ``warm`` more requests are
timed, and the peak resident memory of the process group (the functions-framework
master and its gunicorn worker, shared pages counted in each) is read from /proc.

Targets are interleaved run by run, so machine noise hits them alike, after one
untimed start each that warms the page cache. Each start gets a freshly reset
Firestore and sandbox, with the admin connected and a few events in the calendar.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import common
from localstack import processes
from localstack.constants import MAINTENANCE, PAYMENTS

BARE = common.BARE
START_TIMEOUT = 60.0
POLL_SECONDS = 0.005
SEEDED_EVENTS = 20
# Loopback where nothing listens: the sandbox records the watch channel's notifications
# as undeliverable, so maintenance runs its whole upkeep without a webhook server.
NOWHERE = "http://127.0.0.1:9/calendar-webhook"

Request = tuple[str, str, bytes | None, dict[str, str]]


@dataclass(frozen=True)
class Target:
    """A function to start, what it is first asked, and what else it needs."""

    name: str
    source: Path
    request: Callable[[], Request]
    env: Mapping[str, str] = field(default_factory=dict)


def _get(path: str = "/", accept: str = "*/*") -> Callable[[], Request]:
    return lambda: ("GET", path, None, {"Accept": accept})


def _push(topic: str, data: bytes) -> Callable[[], Request]:
    def request() -> Request:
        body, headers = common.push_body(data, topic)  # a new CloudEvent id every time
        return "POST", processes.push_url("", topic), body, headers

    return request


def _notification() -> Request:
    # What Google sends, for a channel classcal never made: one Firestore read, then 403.
    return (
        "POST",
        "/",
        b"",
        {
            "X-Goog-Channel-ID": "cold-start-unknown-channel",
            "X-Goog-Channel-Token": "not-a-channel-token",
            "X-Goog-Resource-ID": "cold-start-resource",
            "X-Goog-Resource-State": "exists",
            "X-Goog-Message-Number": "1",
        },
    )


# A payment status that records nothing: the booking it names does not exist.
_UNKNOWN_PAYMENT = json.dumps(
    {"preferenceId": "cold-start-unknown-preference", "status": "pending", "paymentId": "mp-0"}
).encode()


def targets() -> list[Target]:
    """The bare hello first, then every function in functions/."""
    requests: dict[str, tuple[Callable[[], Request], dict[str, str]]] = {
        "list_events": (_get("/", "application/json"), {}),
        "oauth_callback": (_get("/", "text/html"), {}),
        "calendar_webhook": (_notification, {}),
        "create_event": (_push(PAYMENTS, _UNKNOWN_PAYMENT), {}),
        "calendar_maintenance": (
            _push(MAINTENANCE, b"{}"),
            {"CALENDAR_WEBHOOK_URL": NOWHERE},
        ),
    }
    found = [Target(BARE, common.BARE_SOURCE, _get("/"))]
    for name in processes.function_names():
        request, env = requests.get(name, (_get("/"), {}))
        found.append(Target(name, processes.FUNCTIONS / name / "main.py", request, env))
    return found


def _prepare(lab: common.Lab) -> None:
    """A fresh Firestore and sandbox, the admin connected, a few classes in the calendar."""
    from shared.google import calendar

    lab.reset()
    lab.connect_admin()
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=3)
    for n in range(SEEDED_EVENTS):
        start = first + timedelta(days=2 * n)
        calendar.insert_event(
            {
                "summary": f"Clase {n}",
                "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
                "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
            },
            send_updates="none",
        )


def _connect(port: int, deadline: float) -> tuple[http.client.HTTPConnection, float]:
    """A connection as soon as the port accepts one; and when that was."""
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=START_TIMEOUT)
        try:
            connection.connect()
            return connection, time.perf_counter()
        except OSError:
            connection.close()
            if time.perf_counter() > deadline:
                raise TimeoutError(f"nothing listened on port {port}") from None
            time.sleep(POLL_SECONDS)


def _ask(connection: http.client.HTTPConnection, request: Request) -> tuple[int, bytes]:
    method, path, body, headers = request
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.read()


def _one_start(lab: common.Lab, target: Target, warm: int, tag: str) -> dict[str, Any]:
    """Start ``target`` once; time its first good answer and ``warm`` more; read its memory.

    A start that never gets an answer under 500 comes back with ``error`` set.
    """
    port = processes.free_port()
    env = processes.function_env(lab.env(**target.env))
    began = time.perf_counter()
    # Spawned, not started and waited for: the clock is this section's own figure.
    process = processes.spawn(
        f"function-{target.name}",
        processes.function_argv(target.name, target.source, port),
        lab.log_dir / tag,
        env=env,
    )
    statuses: dict[str, int] = {}
    try:
        try:
            connection, listening, first, first_status = _first_answer(
                process, port, target, began + START_TIMEOUT, statuses
            )
        except (TimeoutError, RuntimeError) as error:
            return {"error": str(error).splitlines()[0], "statuses": statuses, "log": tag}
        latencies: list[float] = []
        for _ in range(warm):
            started = time.perf_counter()
            status, _ = _ask(connection, target.request())
            latencies.append(time.perf_counter() - started)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        connection.close()
        memory_kb = common.group_memory_kb(process.popen.pid)
    finally:
        process.stop()
    return {
        "listening_ms": (listening - began) * 1000,
        "first_response_ms": (first - began) * 1000,
        "first_status": first_status,
        "warm_median_ms": common.median(latencies) * 1000 if latencies else float("nan"),
        "peak_rss_kb": memory_kb,
        "statuses": statuses,
    }


def _first_answer(
    process: processes.ManagedProcess,
    port: int,
    target: Target,
    deadline: float,
    statuses: dict[str, int],
) -> tuple[http.client.HTTPConnection, float, float, int]:
    """Ask until an answer under 500 comes: (connection, listening at, answered at, status)."""
    connection, listening = _connect(port, deadline)
    while True:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{target.name} exited early (log {process.log_path})")
        try:
            status, body = _ask(connection, target.request())
        except (OSError, http.client.HTTPException):
            status, body = 0, b""  # 0: the connection broke, no answer
            connection.close()
            connection, _ = _connect(port, deadline)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if 0 < status < 500:
            return connection, listening, time.perf_counter(), status
        if time.perf_counter() > deadline:
            raise TimeoutError(
                f"{target.name} gave no answer under 500 in {START_TIMEOUT:.0f} s "
                f"(last: {status} {body[:120]!r}; log {process.log_path})"
            )
        time.sleep(POLL_SECONDS)


def run(lab: common.Lab, runs: int, warm: int) -> dict[str, Any]:
    chosen = targets()
    samples: dict[str, list[dict[str, Any]]] = {t.name: [] for t in chosen}
    common.say(f"  cold: priming, then {runs} start(s) of {len(chosen)} targets ...")
    for target in chosen:  # untimed: page cache and __pycache__ warmed for every target
        _prepare(lab)
        _one_start(lab, target, 1, f"cold-prime-{target.name}")
    for r in range(runs):
        for target in chosen:
            _prepare(lab)
            samples[target.name].append(_one_start(lab, target, warm, f"cold-{r}-{target.name}"))
        common.say(f"    cold: run {r + 1}/{runs} done")

    def good(name: str) -> list[dict[str, Any]]:
        return [s for s in samples[name] if "error" not in s]

    def med(name: str, key: str) -> float:
        return common.median(s[key] for s in good(name))

    bare_first = med(BARE, "first_response_ms")
    bare_memory = med(BARE, "peak_rss_kb")
    bare_warm = med(BARE, "warm_median_ms")
    functions: dict[str, Any] = {}
    for target in chosen:
        name = target.name
        first = med(name, "first_response_ms")
        listening = med(name, "listening_ms")
        memory = med(name, "peak_rss_kb")
        warm_ms = med(name, "warm_median_ms")
        statuses: dict[str, int] = {}
        for sample in samples[name]:
            for status, count in sample["statuses"].items():
                statuses[status] = statuses.get(status, 0) + count
        functions[name] = {
            "first_response_ms": round(first, 1),
            "listening_ms": round(listening, 1),
            "first_request_ms": round(first - listening, 1),
            "first_response_ratio_to_bare": round(first / bare_first, 2),
            "peak_rss_mb": round(memory / 1024, 1),
            "peak_rss_ratio_to_bare": round(memory / bare_memory, 2),
            "warm_median_ms": round(warm_ms, 2),
            "warm_ratio_to_bare": round(warm_ms / bare_warm, 2),
            "first_response_ms_runs": [round(s["first_response_ms"], 1) for s in good(name)],
            "first_status": good(name)[-1]["first_status"] if good(name) else None,
            "answers_5xx": sum(n for status, n in statuses.items() if int(status) >= 500),
            "statuses": dict(sorted(statuses.items())),
            "failed_starts": [s["error"] for s in samples[name] if "error" in s],
        }
    return {
        "runs": runs,
        "warm_requests": warm,
        "memory": "sum of VmHWM over the process group (master and gunicorn worker)",
        "functions": functions,
    }


def problems(figures: Mapping[str, Any]) -> list[str]:
    """Correctness only: every start answered, and nothing answered with a 5xx."""
    found = []
    for name, data in figures.get("functions", {}).items():
        for error in data["failed_starts"]:
            found.append(f"cold: {name} did not start: {error}")
        if data["answers_5xx"]:
            found.append(
                f"cold: {name} answered 5xx {data['answers_5xx']} time(s): {data['statuses']}"
            )
    return found
