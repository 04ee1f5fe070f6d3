"""create_event throughput and latency, as a ratio to the bare minimum, in one run.

    python -m benchmarks.bench_create_event [--bookings 200] [--workers 4]

Starts the Firestore emulator, the Google sandbox and a real functions-framework server
running create_event, connects the admin's Google account, and writes the bookings.

1. Sequential: each approved payment is posted to the function as a Pub/Sub push
   CloudEvent, interleaved booking by booking with the bare minimum the job needs,
   made directly with the client libraries in this process (the same Firestore read,
   Calendar insert with a Meet request, and Firestore write), so machine noise hits
   both alike. The median time per booking is reported as a ratio to the bare one.
2. Concurrent: as many bookings again, posted by ``--workers`` threads, for bookings/s
   when Pub/Sub pushes several messages at once.

Calendar and Secret Manager calls per booking come from the sandbox's request counts.
Prints a table and writes ``benchmarks/results/create_event.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from localstack import processes

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "create_event.json"
CLIENT_ID = "classcal-bench.apps.googleusercontent.com"
CLIENT_SECRET = "sandbox-client-secret"
ADMIN_EMAIL = "admin@school.test"


def _environment(firestore_host: str, sandbox_url: str) -> dict[str, str]:
    return {
        "GOOGLE_CLOUD_PROJECT": processes.PROJECT,
        "FIRESTORE_EMULATOR_HOST": firestore_host,
        "GOOGLE_SANDBOX_URL": sandbox_url,
        "AUTH_GOOGLE_ID": CLIENT_ID,
        "AUTH_GOOGLE_SECRET": CLIENT_SECRET,
        "CALENDAR_ID": "primary",
        "LOG_LEVEL": "WARNING",
    }


def _connect_admin(sandbox_url: str) -> str:
    """Register the OAuth client, store a refresh token as the admin's connection would."""
    from sandbox.control import SandboxControl
    from shared.google import clients, tokens

    control = SandboxControl(sandbox_url)
    control.register_client(CLIENT_ID, CLIENT_SECRET, ["http://127.0.0.1/callback"])
    granted = control.issue_token(ADMIN_EMAIL, CLIENT_ID, clients.CALENDAR_SCOPE)
    tokens.store_refresh_token(granted["refresh_token"])
    return str(granted["refresh_token"])


def _write_bookings(client: Any, count: int, tag: str) -> list[tuple[str, str]]:
    """``count`` pending bookings in the seed's shape: (booking id, preference id)."""
    start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    client.collection("users").document("bench-student").set(
        {"email": "student@example.test", "name": "Bench Student"}
    )
    written = []
    batch = client.batch()
    for i in range(count):
        booking_id = f"bench-{tag}-{i:04d}-{uuid.uuid4().hex[:6]}"
        preference_id = f"pref-{booking_id}"
        begins = start + timedelta(hours=i)
        batch.set(
            client.collection("virtualClasses").document(booking_id),
            {
                "bookedById": "bench-student",
                "preferenceId": preference_id,
                "startTime": begins,
                "endTime": begins + timedelta(hours=1),
                "classType": "individual",
                "maxParticipants": 1,
                "learningFocus": "conversation",
                "classPrice": 15000,
                "status": "pending",
            },
        )
        written.append((booking_id, preference_id))
        if len(written) % 400 == 0:
            batch.commit()
            batch = client.batch()
    batch.commit()
    return written


def _cloud_event(preference_id: str) -> tuple[bytes, dict[str, str]]:
    data = json.dumps({"preferenceId": preference_id, "status": "approved", "paymentId": "b-1"})
    body = json.dumps(processes.pubsub_envelope(data.encode())).encode()
    return body, processes.cloud_event_headers("payments")


class _Poster:
    """One keep-alive connection to the function (one per thread)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def post(self, preference_id: str) -> float:
        body, headers = _cloud_event(preference_id)
        started = time.perf_counter()
        self.connection.request("POST", "/", body=body, headers=headers)
        response = self.connection.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"create_event answered {response.status} for {preference_id}")
        return elapsed


class _Bare:
    """The least the job needs, made directly with the client libraries."""

    def __init__(self, firestore: Any, refresh_token: str) -> None:
        import google_auth_httplib2
        import httplib2
        from google.oauth2.credentials import Credentials
        from googleapiclient.discovery import build

        from shared.google import clients

        endpoints = clients.endpoints()
        credentials = Credentials(
            token=None,
            refresh_token=refresh_token,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            token_uri=endpoints.token_uri,
            scopes=[clients.CALENDAR_SCOPE],
        )
        http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=15))
        self.calendar = build(
            "calendar",
            "v3",
            http=http,
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": endpoints.calendar_api},
        )
        self.firestore = firestore

    def schedule(self, booking_id: str) -> float:
        started = time.perf_counter()
        ref = self.firestore.collection("virtualClasses").document(booking_id)
        booking = ref.get().to_dict()
        event = (
            self.calendar.events()
            .insert(
                calendarId="primary",
                conferenceDataVersion=1,
                body={
                    "summary": "Clase de Inglés",
                    "start": {"dateTime": booking["startTime"].isoformat()},
                    "end": {"dateTime": booking["endTime"].isoformat()},
                    "conferenceData": {
                        "createRequest": {
                            "requestId": booking_id,
                            "conferenceSolutionKey": {"type": "hangoutsMeet"},
                        }
                    },
                },
            )
            .execute()
        )
        ref.update({"googleEventId": event["id"], "status": "scheduled"})
        return time.perf_counter() - started


def _calls(stats: dict[str, Any], prefix: str) -> int:
    return sum(n for name, n in stats["requests"].items() if name.startswith(prefix))


def run(bookings: int, workers: int) -> dict[str, Any]:
    from google.cloud import firestore

    from sandbox.control import SandboxControl
    from shared.core.config import reset_config
    from shared.google import clients, tokens

    log_dir = Path(tempfile.mkdtemp(prefix="bench-create-event-"))
    started: list[processes.ManagedProcess] = []
    previous = dict(os.environ)
    try:
        sandbox = processes.start_sandbox(log_dir)
        started.append(sandbox)
        emulator = processes.start_firestore(log_dir)
        started.append(emulator)
        env = _environment(emulator.url, sandbox.url)
        os.environ.update(env)
        reset_config()
        clients.reset_clients()
        tokens.forget_admin_credentials()
        refresh_token = _connect_admin(sandbox.url)
        function = processes.start_function("create_event", env, log_dir)
        started.append(function)
        control = SandboxControl(sandbox.url)
        client = firestore.Client(project=processes.PROJECT)

        paid = _write_bookings(client, bookings, "fn")
        bare_bookings = _write_bookings(client, bookings, "bare")
        concurrent = _write_bookings(client, bookings, "par")
        bare = _Bare(client, refresh_token)
        poster = _Poster(function.url)
        base = control.stats()  # before the function's first message
        # Warm both paths (imports, first token refresh) outside the measurement.
        warm = _write_bookings(client, 2, "warm")
        poster.post(warm[0][1])
        bare.schedule(warm[1][0])

        before = control.stats()
        function_times: list[float] = []
        bare_times: list[float] = []
        for (_, preference_id), (bare_id, _) in zip(paid, bare_bookings, strict=True):
            function_times.append(poster.post(preference_id))
            bare_times.append(bare.schedule(bare_id))
        after = control.stats()
        function_calendar = _calls(after, "calendar.") - _calls(before, "calendar.")
        bare_calendar = bookings  # one insert each, by construction
        function_calendar -= bare_calendar

        local = threading.local()

        def post(preference_id: str) -> float:
            if not hasattr(local, "poster"):
                local.poster = _Poster(function.url)
            return local.poster.post(preference_id)

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(post, [p for _, p in concurrent]))
        concurrent_seconds = time.perf_counter() - began

        states = Counter(
            (s.to_dict() or {}).get("status")
            for s in client.collection("virtualClasses").stream()
            if s.id.startswith(("bench-fn", "bench-par"))
        )
        if states != Counter({"scheduled": 2 * bookings}):
            raise RuntimeError(f"not every booking was scheduled: {dict(states)}")
        # The bare path never reads Secret Manager: every read is the function's.
        secret_reads = _calls(control.stats(), "secretmanager.") - _calls(base, "secretmanager.")
        delivered = 2 * bookings + 1
    finally:
        for process in reversed(started):
            process.stop()
        os.environ.clear()
        os.environ.update(previous)

    function_median = statistics.median(function_times)
    bare_median = statistics.median(bare_times)
    return {
        "bookings": bookings,
        "workers": workers,
        "sequential_bookings_per_second": bookings / sum(function_times),
        "concurrent_bookings_per_second": bookings / concurrent_seconds,
        "median_ms_per_booking": function_median * 1000,
        "p90_ms_per_booking": statistics.quantiles(function_times, n=10)[-1] * 1000,
        "bare_median_ms_per_booking": bare_median * 1000,
        "ratio_to_bare": function_median / bare_median,
        "calendar_calls_per_booking": function_calendar / bookings,
        "secret_manager_calls_per_booking": secret_reads / delivered,
        "secret_manager_calls_total": secret_reads,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _table(result: dict[str, Any]) -> str:
    rows = [
        ("bookings (sequential / concurrent)", f"{result['bookings']} / {result['bookings']}"),
        ("bookings/s, sequential", f"{result['sequential_bookings_per_second']:.1f}"),
        (
            f"bookings/s, {result['workers']} concurrent deliveries",
            f"{result['concurrent_bookings_per_second']:.1f}",
        ),
        ("median ms per booking (function)", f"{result['median_ms_per_booking']:.1f}"),
        ("p90 ms per booking (function)", f"{result['p90_ms_per_booking']:.1f}"),
        ("median ms per booking (bare minimum)", f"{result['bare_median_ms_per_booking']:.1f}"),
        ("ratio function / bare", f"{result['ratio_to_bare']:.2f}"),
        ("Calendar calls per booking", f"{result['calendar_calls_per_booking']:.2f}"),
        ("Secret Manager calls per booking", f"{result['secret_manager_calls_per_booking']:.3f}"),
        ("Secret Manager calls in all", str(result["secret_manager_calls_total"])),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value:>10}" for label, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_create_event")
    parser.add_argument("--bookings", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    result = run(args.bookings, args.workers)
    print(_table(result))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
