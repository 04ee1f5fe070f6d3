"""list_events latency, cached and uncached, as ratios to a bare function, in one run.

    python -m benchmarks.bench_list_events [--events 200] [--rounds 300]

Starts the Google sandbox and three real functions-framework servers: list_events with
the default cache, list_events with LIST_CACHE_TTL_SECONDS=0 (every request reads
Google through the admin's token), and ``benchmarks/bare`` (returns a constant).
Requests are interleaved round by round over one keep-alive connection per server, so
machine noise hits all three alike. Prints a table and writes
``benchmarks/results/list_events.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from localstack import processes

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "list_events.json"
CLIENT_ID = "classcal-bench.apps.googleusercontent.com"
CLIENT_SECRET = "sandbox-client-secret"
ADMIN_EMAIL = "admin@school.test"


def _start_bare(env: dict[str, str], log_dir: Path) -> processes.ManagedProcess:
    port = processes.free_port()
    argv = [
        sys.executable,
        "-m",
        "functions_framework",
        "--target=bare",
        f"--source={ROOT / 'benchmarks' / 'bare' / 'main.py'}",
        "--host=127.0.0.1",
        f"--port={port}",
    ]
    process = processes.spawn("function-bare", argv, log_dir, env={**os.environ, **env})
    process.url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_for_http(f"{process.url}/", process, timeout=30)
    except BaseException:
        process.stop()
        raise
    return process


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


def _seed_calendar(sandbox_url: str, events: int) -> None:
    """Connect the admin and create ``events`` classes over the next 60 days."""
    from sandbox.control import SandboxControl
    from shared.core.config import reset_config
    from shared.google import calendar, clients, tokens

    control = SandboxControl(sandbox_url)
    control.reset()
    control.register_client(CLIENT_ID, CLIENT_SECRET, ["http://127.0.0.1/callback"])
    reset_config()
    clients.reset_clients()
    granted = control.issue_token(ADMIN_EMAIL, CLIENT_ID, clients.CALENDAR_SCOPE)
    tokens.store_refresh_token(granted["refresh_token"])
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    step = timedelta(days=59) / max(events, 1)
    for n in range(events):
        start = first + n * step
        calendar.insert_event(
            {
                "summary": f"Clase {n}",
                "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
                "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
            },
            send_updates="none",
        )


def _summary(samples: list[float], baseline: float) -> dict[str, float]:
    ordered = sorted(samples)
    median = statistics.median(ordered)
    return {
        "median_ms": round(median * 1000, 3),
        "p90_ms": round(ordered[int(len(ordered) * 0.9)] * 1000, 3),
        "ratio_to_bare": round(median / baseline, 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200, help="events in the calendar")
    parser.add_argument("--rounds", type=int, default=300, help="timed requests per server")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per server")
    args = parser.parse_args(argv)

    log_dir = Path(tempfile.mkdtemp(prefix="bench-list-events-"))
    started: list[processes.ManagedProcess] = []
    try:
        sandbox = processes.start_sandbox(log_dir)
        started.append(sandbox)
        env = {
            "GOOGLE_SANDBOX_URL": sandbox.url,
            "GOOGLE_CLOUD_PROJECT": processes.PROJECT,
            "AUTH_GOOGLE_ID": CLIENT_ID,
            "AUTH_GOOGLE_SECRET": CLIENT_SECRET,
            "CALENDAR_ID": "primary",
            "ALLOWED_ORIGINS": "https://school.example",
        }
        for name in ("CALENDAR_API_KEY", "LIST_CACHE_TTL_SECONDS", "LIST_WINDOW_DAYS"):
            os.environ.pop(name, None)
        os.environ.update(env)
        _seed_calendar(sandbox.url, args.events)

        servers = {
            "bare function": _start_bare(env, log_dir / "bare"),
            "list_events, cached": processes.start_function(
                "list_events", {**env, "LIST_CACHE_TTL_SECONDS": "3600"}, log_dir / "cached"
            ),
            "list_events, uncached": processes.start_function(
                "list_events", {**env, "LIST_CACHE_TTL_SECONDS": "0"}, log_dir / "uncached"
            ),
        }
        started.extend(servers.values())
        connections = {name: _connect(p.url) for name, p in servers.items()}
        bodies: dict[str, bytes] = {}
        for name, connection in connections.items():
            for _ in range(args.warmup):
                _, bodies[name] = _timed_get(connection)
        if bodies["list_events, cached"] != bodies["list_events, uncached"]:
            raise RuntimeError("the cached and uncached servers disagree")
        slots = len(json.loads(bodies["list_events, cached"]))

        samples: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(args.rounds):
            for name, connection in connections.items():
                samples[name].append(_timed_get(connection)[0])
        for connection in connections.values():
            connection.close()
    finally:
        for process in reversed(started):
            process.stop()

    baseline = statistics.median(samples["bare function"])
    results = {
        "benchmark": "list_events",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "events": args.events,
        "busy_slots": slots,
        "rounds": args.rounds,
        "targets": {name: _summary(s, baseline) for name, s in samples.items()},
    }
    print(f"list_events: {slots} busy slots, {args.rounds} interleaved requests per server\n")
    print(f"{'server':<24} {'median ms':>10} {'p90 ms':>10} {'x bare':>8}")
    for name, figures in results["targets"].items():
        print(
            f"{name:<24} {figures['median_ms']:>10.2f} {figures['p90_ms']:>10.2f}"
            f" {figures['ratio_to_bare']:>8.2f}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return results


if __name__ == "__main__":
    main()
