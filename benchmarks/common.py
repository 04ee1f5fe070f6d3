"""What every section shares: the emulators and the sandbox, bookings, messages, figures."""

from __future__ import annotations

import json
import os
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from localstack import processes, stack
from localstack.constants import (
    ADMIN_CALENDAR,
    ADMIN_EMAIL,
    CLIENT_ID,
    CLIENT_SECRET,
    PAYMENTS,
    REDIRECT_URI,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
BARE = "bare"
BARE_SOURCE = ROOT / "benchmarks" / "bare" / "main.py"

# Stat keys of the sandbox's request counter.
INSERT = "calendar.events.insert"
LIST = "calendar.events.list"
TOKEN = "oauth.token"
SECRET_READ = "secretmanager.projects.secrets.versions.access"


class Failed(AssertionError):
    """A correctness figure is wrong: the run must exit non-zero."""


@dataclass(frozen=True)
class Booking:
    booking_id: str
    preference_id: str


@dataclass
class Lab:
    """The emulators and the sandbox, started once; each section resets them."""

    log_dir: Path
    firestore: processes.ManagedProcess
    pubsub: processes.ManagedProcess
    sandbox: processes.ManagedProcess
    started: list[processes.ManagedProcess] = field(default_factory=list)
    # A fresh random key per run, as the local stack makes one.
    session_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @classmethod
    def start(cls, log_dir: Path) -> Lab:
        started: list[processes.ManagedProcess] = []
        try:
            sandbox = processes.start_sandbox(log_dir)
            started.append(sandbox)
            firestore = processes.start_firestore(log_dir)
            started.append(firestore)
            pubsub = processes.start_pubsub(log_dir)
            started.append(pubsub)
        except BaseException:
            for process in reversed(started):
                process.stop()
            raise
        return cls(log_dir, firestore, pubsub, sandbox, started)

    def stop(self) -> None:
        for process in reversed(self.started):
            process.stop()

    @property
    def control(self) -> Any:
        from sandbox.control import SandboxControl

        return SandboxControl(self.sandbox.url, timeout=30.0)

    @property
    def pubsub_client(self) -> processes.PubSub:
        return processes.PubSub(self.pubsub.url)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every function (and of this process, for shared/ calls)."""
        return stack.environment(
            firestore=self.firestore.url,
            pubsub=self.pubsub.url,
            sandbox=self.sandbox.url,
            allowed_origins="*",
            # Signs the console's cookies (the revoked section reconnects through it).
            **{"LOG_LEVEL": "INFO", "SESSION_SIGNING_KEY": self.session_key, **extra},
        )

    def reset(self, redirect_uris: Iterable[str] = (REDIRECT_URI,)) -> None:
        """Wiped emulators, a reset sandbox with the OAuth client, this process pointed at them."""
        processes.reset_firestore(self.firestore.url)
        processes.reset_pubsub(self.pubsub.url)
        control = self.control
        control.reset()
        control.register_client(CLIENT_ID, CLIENT_SECRET, list(redirect_uris))
        self.point_here()

    def point_here(self, **extra: str) -> None:
        """This process's environment and cached clients follow the lab (for shared/ calls)."""
        from shared.core.config import reset_config
        from shared.google import clients, tokens

        for name in ("CALENDAR_API_KEY", "LIST_CACHE_TTL_SECONDS", "CALENDAR_WEBHOOK_URL"):
            os.environ.pop(name, None)
        os.environ.update(self.env(**extra))
        reset_config()
        clients.reset_clients()
        tokens.forget_admin_credentials()

    def connect_admin(self) -> dict[str, Any]:
        """A sandbox-issued refresh token stored as the admin's connection would store it."""
        from shared.google import clients, tokens

        granted: dict[str, Any] = self.control.issue_token(
            ADMIN_EMAIL, CLIENT_ID, clients.CALENDAR_SCOPE
        )
        tokens.store_refresh_token(granted["refresh_token"])
        tokens.forget_admin_credentials()
        return granted

    def db(self) -> Any:
        from shared.stores import db

        return db.firestore_client()

    def start_function(
        self, name: str, env: Mapping[str, str], *, port: int | None = None, tag: str = ""
    ) -> processes.ManagedProcess:
        """``functions/<name>`` (or, named ``bare``, the bare hello) on a running server."""
        source = BARE_SOURCE if name == BARE else None
        return processes.start_function(
            name, env, self.log_dir / (tag or name), port=port, source=source
        )


_next_slot = [0]  # half hours already handed out, so no two bookings clash in the guard


def write_bookings(
    db: Any, count: int, tag: str, first_hour: int = 48, *, own_times: bool = True
) -> list[Booking]:
    """``count`` pending bookings in the seed's shape, each with its own student.

    Half an hour each, back to back (touching, never overlapping); with ``own_times``
    every call continues where the last one ended, so the slot guard never refuses one.
    """
    offset = timedelta(minutes=30 * _next_slot[0]) if own_times else timedelta()
    if own_times:
        _next_slot[0] += count
    base = (datetime.now(UTC) + timedelta(hours=first_hour)).replace(
        minute=0, second=0, microsecond=0
    ) + offset
    written: list[Booking] = []
    batch = db.batch()
    pending = 0
    for i in range(count):
        booking_id = f"{tag}-{i:05d}-{uuid.uuid4().hex[:6]}"
        student_id = f"student-{booking_id}"
        begins = base + timedelta(minutes=30 * i)
        batch.set(
            db.collection("users").document(student_id),
            {"email": f"{student_id}@example.test", "name": f"Student {i}"},
        )
        batch.set(
            db.collection("virtualClasses").document(booking_id),
            {
                "bookedById": student_id,
                "preferenceId": f"pref-{booking_id}",
                "startTime": begins,
                "endTime": begins + timedelta(minutes=30),
                "classType": "individual" if i % 3 else "grupal",
                "maxParticipants": 1 if i % 3 else 4,
                "learningFocus": "conversation",
                "classPrice": 15000,
                "status": "pending",
            },
        )
        written.append(Booking(booking_id, f"pref-{booking_id}"))
        pending += 2
        if pending >= 400:  # a batch takes at most 500 writes
            batch.commit()
            batch = db.batch()
            pending = 0
    if pending:
        batch.commit()
    return written


def seed_calendar(events: int, days: float = 59) -> None:
    """``events`` one-hour classes spread over the next ``days`` days, as the admin's."""
    from shared.google import calendar

    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    step = timedelta(days=days) / max(events, 1)
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


def approved(booking: Booking, n: int = 0) -> bytes:
    """The payments system's approved message for a booking."""
    return json.dumps(
        {
            "preferenceId": booking.preference_id,
            "status": "approved",
            "paymentId": f"mp-{booking.booking_id}-{n}",
            "amount": 15000,
            "currency": "ARS",
        }
    ).encode()


def push_body(data: bytes, topic: str = PAYMENTS) -> tuple[bytes, dict[str, str]]:
    """A Pub/Sub push as a binary-mode CloudEvent (what functions-framework receives)."""
    body = processes.pubsub_envelope(data, subscription=f"{topic}-bench")
    return json.dumps(body).encode(), processes.cloud_event_headers(topic)


def calls(stats: Mapping[str, Any], key: str) -> int:
    return int(stats["requests"].get(key, 0))


def delta(after: Mapping[str, Any], before: Mapping[str, Any], key: str) -> int:
    return calls(after, key) - calls(before, key)


def bookings_by_id(db: Any, prefix: str) -> dict[str, dict[str, Any]]:
    """Every booking whose id starts with ``prefix``."""
    found: dict[str, dict[str, Any]] = {}
    for snapshot in db.collection("virtualClasses").stream():
        if snapshot.id.startswith(prefix):
            found[snapshot.id] = snapshot.to_dict() or {}
    return found


def count_scheduled(db: Any, prefix: str) -> int:
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = db.collection("virtualClasses").where(filter=FieldFilter("status", "==", "scheduled"))
    return sum(1 for s in query.select(["status"]).stream() if s.id.startswith(prefix))


def wait_until(
    done: Any, timeout: float, poll: float = 1.0, progress: str = ""
) -> tuple[bool, float]:
    """Call ``done()`` until it is true or ``timeout`` passes; (met?, seconds waited)."""
    started = time.monotonic()
    last_print = started
    while True:
        value = done()
        now = time.monotonic()
        if value is True:
            return True, now - started
        if now - started > timeout:
            return False, now - started
        if progress and now - last_print >= 10:
            say(f"    {progress}: {value}")
            last_print = now
        time.sleep(poll)


def check_bookings(
    db: Any, control: Any, prefix: str, expected: Iterable[Booking]
) -> dict[str, Any]:
    """Every expected booking complete, exactly one event and one user activity each.

    Returns the correctness figures; the caller asserts them.
    """
    wanted = {b.booking_id for b in expected}
    stored = bookings_by_id(db, prefix)
    scheduled = {i for i, d in stored.items() if d.get("status") == "scheduled"}
    complete = {
        i
        for i in scheduled
        if stored[i].get("googleEventId")
        and str(stored[i].get("htmlLink") or "").startswith("https://meet.google.com/")
        and isinstance(stored[i].get("accessCode"), str)
        and len(stored[i]["accessCode"]) == 8
    }
    activities: dict[str, int] = {}
    for snapshot in db.collection("userActivities").stream():
        class_id = (snapshot.to_dict() or {}).get("classId")
        if isinstance(class_id, str) and class_id.startswith(prefix):
            activities[class_id] = activities.get(class_id, 0) + 1
    from shared.domain.event_shape import BOOKING_ID_PROPERTY

    live: dict[str, list[dict[str, Any]]] = {}
    for event in control.events(ADMIN_CALENDAR):
        if event.get("status") == "cancelled":
            continue
        private = (event.get("extendedProperties") or {}).get("private") or {}
        booking_id = private.get(BOOKING_ID_PROPERTY)
        if isinstance(booking_id, str) and booking_id.startswith(prefix):
            live.setdefault(booking_id, []).append(event)
    duplicates = sum(len(events) - 1 for events in live.values())
    wrong_event = {
        i
        for i in scheduled & set(live)
        if stored[i].get("googleEventId") not in {e.get("id") for e in live[i]}
    }
    half_written = (
        (scheduled - complete)
        | {i for i in live if i not in scheduled}  # an event without a scheduled booking
        | {i for i in scheduled if activities.get(i, 0) != 1}
        | {i for i in scheduled if i not in live}  # a booking pointing at no event
        | wrong_event
    )
    lost = wanted - scheduled
    return {
        "bookings": len(wanted),
        "bookings_scheduled": len(scheduled & wanted),
        "bookings_complete": len(complete & wanted),
        "events_in_calendar": sum(len(e) for e in live.values()),
        "duplicates": duplicates,
        "lost": len(lost),
        "half_written": len(half_written),
        "user_activities": sum(activities.values()),
        "waiting_reasons": _reasons(stored, wanted - scheduled),
        "examples": sorted(lost | half_written)[:5],
    }


def _reasons(stored: Mapping[str, Mapping[str, Any]], ids: Iterable[str]) -> dict[str, int]:
    reasons: dict[str, int] = {}
    for booking_id in ids:
        data = stored.get(booking_id) or {}
        key = f"{data.get('schedulingState')}:{data.get('schedulingReason')}"
        reasons[key] = reasons.get(key, 0) + 1
    return reasons


def assert_correct(figures: Mapping[str, Any], section: str) -> list[str]:
    """The correctness promises, as failure messages (empty: all kept)."""
    problems = []
    total = figures["bookings"]
    for name, want in (
        ("bookings_scheduled", total),
        ("bookings_complete", total),
        ("events_in_calendar", total),
        ("user_activities", total),
        ("duplicates", 0),
        ("lost", 0),
        ("half_written", 0),
    ):
        if figures[name] != want:
            problems.append(f"{section}: {name} is {figures[name]}, must be {want}")
    if problems and figures.get("examples"):
        problems.append(
            f"{section}: e.g. {', '.join(figures['examples'])}; "
            f"unscheduled by state: {figures['waiting_reasons']}"
        )
    return problems


def delivery_outcomes(log_paths: Iterable[Path], function: str) -> dict[str, dict[str, int]]:
    """Each delivery's closing JSON log line, counted by outcome, and retries by reason."""
    outcomes: dict[str, int] = {}
    retries: dict[str, int] = {}
    for path in log_paths:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("function") != function or "event_id" not in entry:
                continue
            outcome = str(entry.get("outcome"))
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome == "retry":
                reason = str(entry.get("reason") or "unexpected")
                retries[reason] = retries.get(reason, 0) + 1
    return {"outcomes": dict(sorted(outcomes.items())), "retries": dict(sorted(retries.items()))}


def group_memory_kb(leader_pid: int) -> int:
    """Sum of VmHWM (peak resident set) over a process group, from /proc."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # Fields after the command name (which may hold spaces): state ppid pgrp ...
            pgrp = int(stat.rsplit(")", 1)[1].split()[2])
            if pgrp != leader_pid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(samples: Iterable[float]) -> float:
    values = list(samples)
    return statistics.median(values) if values else float("nan")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
