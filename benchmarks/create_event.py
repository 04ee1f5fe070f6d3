"""Section ``create_event``: throughput and latency per booking, against the bare minimum.

A real functions-framework server runs create_event with the admin connected.

1. Sequential: each approved payment is posted to the function as a Pub/Sub push
   CloudEvent, interleaved booking by booking with the bare minimum the job needs,
   made directly with the client libraries in this process (the same Firestore read,
   Calendar insert with a Meet request, and Firestore write), so machine noise hits
   both alike. The median time per booking is reported as a ratio to the bare one.
2. Concurrent: as many bookings again, posted by ``workers`` threads, for bookings/s
   when Pub/Sub pushes several messages at once.
3. A pending conference: a few bookings more, one at a time, with the sandbox's Meet
   conference still ``pending`` in the insert's answer (its default, as Google may
   answer): the function reads the event again after ``CONFERENCE_POLL_DELAYS``' first
   wait. Reported apart, with its Calendar calls per booking, and not in the ratio.

Phases 1 and 2 run with the conference ready in the insert's own answer, as the bare
path assumes: otherwise every booking of the function, and none of the bare path's,
would include that wait, and the ratio would measure a sleep instead of classcal's work.

Calendar and Secret Manager calls per booking come from the sandbox's request counts.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from benchmarks import common
from localstack import processes
from localstack.constants import CLIENT_ID, CLIENT_SECRET, PAYMENTS

TAG = "bench"
PENDING_BOOKINGS = 20  # phase 3; each waits about CONFERENCE_POLL_DELAYS' first delay


def _closed_by_peer(sock: Any) -> bool:
    import select

    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)  # an idle keep-alive socket is readable only once closed


class _Poster:
    """One keep-alive connection to the function (one per thread)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def post(self, preference_id: str) -> float:
        data = json.dumps({"preferenceId": preference_id, "status": "approved", "paymentId": "b-1"})
        body = json.dumps(processes.pubsub_envelope(data.encode())).encode()
        headers = processes.cloud_event_headers(PAYMENTS)
        if self.connection.sock is not None and _closed_by_peer(self.connection.sock):
            # gunicorn closes a connection idle for 2 s: open a new one, outside the timing.
            self.connection.close()
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


def _calls(stats: Mapping[str, Any], prefix: str) -> int:
    return sum(n for name, n in stats["requests"].items() if name.startswith(prefix))


def run(lab: common.Lab, bookings: int, workers: int) -> dict[str, Any]:
    lab.reset()
    refresh_token = str(lab.connect_admin()["refresh_token"])
    control = lab.control
    control.set_conference(pending_reads=0)  # phases 1 and 2 (see the module's docstring)
    client = lab.db()
    function = lab.start_function("create_event", lab.env(LOG_LEVEL="WARNING"), tag="create")
    try:
        common.say(f"  create_event: {bookings} sequential and {bookings} concurrent bookings ...")
        paid = common.write_bookings(client, bookings, f"{TAG}-fn")
        bare_bookings = common.write_bookings(client, bookings, f"{TAG}-bare")
        concurrent = common.write_bookings(client, bookings, f"{TAG}-par")
        pending = common.write_bookings(client, min(PENDING_BOOKINGS, bookings), f"{TAG}-pend")
        bare = _Bare(client, refresh_token)
        poster = _Poster(function.url)
        base = control.stats()  # before the function's first message
        # Warm both paths (imports, first token refresh) outside the measurement.
        warm = common.write_bookings(client, 2, f"{TAG}-warm")
        poster.post(warm[0].preference_id)
        bare.schedule(warm[1].booking_id)

        before = control.stats()
        function_times: list[float] = []
        bare_times: list[float] = []
        for booking, bare_booking in zip(paid, bare_bookings, strict=True):
            function_times.append(poster.post(booking.preference_id))
            bare_times.append(bare.schedule(bare_booking.booking_id))
        after = control.stats()
        function_calendar = _calls(after, "calendar.") - _calls(before, "calendar.")
        function_calendar -= bookings  # the bare path's: one insert each, by construction

        local = threading.local()

        def post(preference_id: str) -> float:
            if not hasattr(local, "poster"):
                local.poster = _Poster(function.url)
            return float(local.poster.post(preference_id))

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(post, [b.preference_id for b in concurrent]))
        concurrent_seconds = time.perf_counter() - began

        control.set_conference(pending_reads=1)  # phase 3
        before_pending = control.stats()
        pending_times = [poster.post(b.preference_id) for b in pending]
        pending_calendar = _calls(control.stats(), "calendar.") - _calls(
            before_pending, "calendar."
        )

        states = Counter(
            (s.to_dict() or {}).get("status")
            for s in client.collection("virtualClasses").stream()
            if s.id.startswith((f"{TAG}-fn", f"{TAG}-par", f"{TAG}-pend"))
        )
        # The bare path never reads Secret Manager: every read is the function's.
        secret_reads = _calls(control.stats(), "secretmanager.") - _calls(base, "secretmanager.")
        delivered = 2 * bookings + len(pending) + 1
    finally:
        function.stop()

    function_median = statistics.median(function_times)
    bare_median = statistics.median(bare_times)
    return {
        "bookings": bookings,
        "workers": workers,
        "scheduled": states.get("scheduled", 0),
        "states": dict(states),
        "sequential_bookings_per_second": bookings / sum(function_times),
        "concurrent_bookings_per_second": bookings / concurrent_seconds,
        "median_ms_per_booking": function_median * 1000,
        "p90_ms_per_booking": statistics.quantiles(function_times, n=10)[-1] * 1000,
        "bare_median_ms_per_booking": bare_median * 1000,
        "ratio_to_bare": function_median / bare_median,
        "calendar_calls_per_booking": function_calendar / bookings,
        "secret_manager_calls_per_booking": secret_reads / delivered,
        "secret_manager_calls_total": secret_reads,
        "pending_conference_bookings": len(pending),
        "pending_conference_median_ms": statistics.median(pending_times) * 1000,
        "pending_conference_calendar_calls_per_booking": pending_calendar / len(pending),
    }


def problems(figures: Mapping[str, Any]) -> list[str]:
    """Correctness only: every booking the function was given ends scheduled."""
    given = 2 * figures["bookings"] + figures["pending_conference_bookings"]
    if figures["states"] != {"scheduled": given}:
        return [f"create_event: not every booking was scheduled: {figures['states']}"]
    return []
