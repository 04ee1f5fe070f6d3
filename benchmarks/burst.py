"""Section ``burst``: approved payments at scale, with at-least-once delivery and faults.

Every payment is published three times to topic ``payments``, whose push subscription
feeds a create_event server on a fixed port. A third of the bookings get their three
copies at the same moment (three publishers at once); the others get a second copy a
few seconds later and a third once the first wave is out. Meanwhile the sandbox fails
about 10 % of Calendar calls transiently (429, 403 ``rateLimitExceeded``, 503) and
keeps the Meet conferences of a stretch of bookings pending for a few reads, and the
create_event process group is SIGKILLed mid-run and restarted on the same port, so
the deliveries it held are redelivered once their leases expire.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from benchmarks import common
from localstack import processes
from localstack.constants import PAYMENTS

FAULT_PROBABILITY = 0.1  # of a Calendar call failing, split evenly over three faults
CONFERENCE_PENDING_READS = 4
CHUNK = 50
LEASE_SECONDS = 10
# Handler threads per create_event instance: the work is waiting on the emulator and the
# sandbox; more threads than this only queue on the 2 cores and on emulator transactions.
THREADS = 8
# The push subscription waits this long for an answer before it redelivers. A burst
# queues deliveries in front of the instance for longer than the 10 s default, which
# would turn queueing into redelivery storms; the Terraform subscription uses 60 s.
ACK_DEADLINE = 60
CONFERENCE_POLL_DELAYS = "0.2,0.4,0.8"


def _faults(control: Any) -> None:
    # Three faults checked in turn, each firing with p, fail 1 - (1 - p)^3 of the calls.
    p = 1 - (1 - FAULT_PROBABILITY) ** (1 / 3)
    for status, reason in ((429, "rateLimitExceeded"), (403, "rateLimitExceeded"), (503, None)):
        control.fault(None, r"^/calendar/v3/", status, reason, count=None, probability=p)


def _schedule(bookings: list[common.Booking]) -> list[tuple[float, list[bytes], list[int]]]:
    """(seconds after the start, payloads, booking indexes of first copies) per publish call."""
    jobs: list[tuple[float, list[bytes], list[int]]] = []
    chunks = [list(range(i, min(i + CHUNK, len(bookings)))) for i in range(0, len(bookings), CHUNK)]
    first_wave = 0.4 * len(chunks)
    for c, chunk in enumerate(chunks):
        at = 0.4 * c
        together = [i for i in chunk if i % 3 == 0]  # three copies at once
        apart = [i for i in chunk if i % 3 != 0]
        jobs.append((at, [common.approved(bookings[i], 1) for i in chunk], list(chunk)))
        for copy in (2, 3):
            jobs.append((at, [common.approved(bookings[i], copy) for i in together], []))
        jobs.append((at + 5.0, [common.approved(bookings[i], 2) for i in apart], []))
        jobs.append(
            (first_wave + 10.0 + 0.4 * c, [common.approved(bookings[i], 3) for i in apart], [])
        )
    return sorted(jobs, key=lambda job: job[0])


def run(lab: common.Lab, bookings_count: int, deadline_seconds: float) -> dict[str, Any]:
    lab.reset()
    lab.connect_admin()
    control = lab.control
    db = lab.db()
    common.say(f"  burst: writing {bookings_count} bookings and their students ...")
    bookings = common.write_bookings(db, bookings_count, "burst")

    port = processes.free_port()
    env = lab.env(
        SCHEDULING_LEASE_SECONDS=str(LEASE_SECONDS),
        CONFERENCE_POLL_DELAYS=CONFERENCE_POLL_DELAYS,
        THREADS=str(THREADS),
    )
    first = lab.start_function("create_event", env, port=port, tag="burst-1")
    running = [first]
    pubsub = lab.pubsub_client
    pubsub.create_topic(PAYMENTS)
    pubsub.create_push_subscription(
        "payments-create-event",
        PAYMENTS,
        processes.push_url(first.url, PAYMENTS),
        ack_deadline=ACK_DEADLINE,
    )
    _faults(control)
    before = control.stats()

    jobs = _schedule(bookings)
    published_at: dict[int, float] = {}
    publish_ends: list[float] = []
    started = time.monotonic()
    started_at = datetime.now(UTC)

    def publish(job: tuple[float, list[bytes], list[int]]) -> None:
        at, payloads, firsts = job
        time.sleep(max(0.0, started + at - time.monotonic()))
        pubsub.publish(PAYMENTS, payloads)
        now = time.monotonic()
        for i in firsts:
            published_at[i] = now
        publish_ends.append(now)

    common.say(f"  burst: publishing {3 * bookings_count} messages ...")
    pool = ThreadPoolExecutor(max_workers=8)
    futures = [pool.submit(publish, job) for job in jobs]

    # While a tenth to three tenths of the bookings are done, new Meet conferences stay
    # pending for a few reads; at four tenths the instance is killed with deliveries in
    # flight and restarted on the same port.
    prefix = "burst-"
    pending = killed = False
    killed_at = restart_seconds = float("nan")
    while time.monotonic() - started < deadline_seconds:
        done = common.count_scheduled(db, prefix)
        if not pending and not killed and done >= bookings_count // 10:
            control.set_conference(pending_reads=CONFERENCE_PENDING_READS)
            pending = True
        if pending and done >= 3 * bookings_count // 10:
            control.set_conference(pending_reads=0)
            pending = False
        if not killed and done >= 4 * bookings_count // 10:
            killed_at = time.monotonic() - started
            common.say(f"  burst: SIGKILL create_event at {killed_at:.1f} s ({done} scheduled)")
            first.kill()
            first.stop()  # closes its log; the group is already gone
            time.sleep(1.0)
            restart_began = time.monotonic()
            running.append(lab.start_function("create_event", env, port=port, tag="burst-2"))
            restart_seconds = time.monotonic() - restart_began
            killed = True
        if done >= bookings_count:
            break
        time.sleep(0.5)
    met = common.count_scheduled(db, prefix) >= bookings_count
    control.set_conference(pending_reads=0)

    for future in futures:
        future.result()
    pool.shutdown()
    published_seconds = max(publish_ends, default=started) - started
    # Let the last copies (third wave, redeliveries) land before counting calls.
    _settle([p.log_path for p in running])
    after = control.stats()
    control.clear_faults()
    control.set_conference(pending_reads=0)
    for process in running:
        process.stop()

    figures = common.check_bookings(db, control, prefix, bookings)
    stored = common.bookings_by_id(db, prefix)
    done_times = [
        d["scheduledAt"] for d in stored.values() if isinstance(d.get("scheduledAt"), datetime)
    ]
    wall = (max(done_times) - started_at).total_seconds() if done_times else float("nan")
    outcomes = common.delivery_outcomes([p.log_path for p in running], "create_event")
    figures.update(
        {
            "all_scheduled_before_deadline": met,
            "messages_published": 3 * bookings_count,
            "deliveries_handled": sum(outcomes["outcomes"].values()),
            "delivery_outcomes": outcomes["outcomes"],
            "retry_reasons": outcomes["retries"],
            "calendar_insert_requests": common.delta(after, before, common.INSERT),
            "calendar_inserts_per_booking": common.delta(after, before, common.INSERT)
            / bookings_count,
            "calendar_get_requests": common.delta(after, before, "calendar.events.get"),
            "calendar_faults_fired": after.get("faults_fired", 0) - before.get("faults_fired", 0),
            "token_refreshes": common.delta(after, before, common.TOKEN),
            "secret_reads": common.delta(after, before, common.SECRET_READ),
            "killed_at_seconds": round(killed_at, 1),
            "restart_seconds": round(restart_seconds, 2),
            "published_in_seconds": round(published_seconds, 1),
            "wall_seconds": round(wall, 1),
            "bookings_per_second": round(bookings_count / wall, 1) if wall == wall else 0.0,
            "threads": THREADS,
            "ack_deadline_seconds": ACK_DEADLINE,
            "lease_seconds": LEASE_SECONDS,
            "schema_violations": len(after.get("schema_violations", [])),
        }
    )
    return figures


def _settle(log_paths: list[Any], quiet: float = 3.0, limit: float = 60.0) -> None:
    """Wait until the functions' logs have been quiet for ``quiet`` seconds."""
    began = time.monotonic()
    last = -1
    last_change = time.monotonic()
    while time.monotonic() - began < limit:
        size = sum(p.stat().st_size for p in log_paths if p.exists())
        if size != last:
            last, last_change = size, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            return
        time.sleep(0.5)
