"""Bookings, payments and deliveries, for the create_event, cancellation and sync tests."""

from __future__ import annotations

import itertools
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import functions_framework

from localstack import processes
from localstack.constants import ADMIN_CALENDAR
from localstack.processes import cloud_event_headers, pubsub_envelope
from shared.core.config import reset_config
from shared.domain import event_shape
from shared.stores import bookings

SOURCE = processes.FUNCTIONS / "create_event" / "main.py"
STUDENT_EMAIL = "ana.student@example.test"


@dataclass(frozen=True)
class Booking:
    booking_id: str
    preference_id: str
    student_id: str
    start: datetime
    end: datetime

    @property
    def event_id(self) -> str:
        return event_shape.event_id_for(self.booking_id)


def configure(env: Any, **variables: str) -> None:
    """Set environment variables for the rest of the test (the configuration is re-read)."""
    for name, value in variables.items():
        env.setenv(name, value)
    reset_config()


def app_client() -> Any:
    """functions-framework's real app for create_event, with its test client."""
    return functions_framework.create_app("create_event", str(SOURCE)).test_client()


_slots = itertools.count()


def next_class_start(days: int = 3) -> datetime:
    """A class time ``days`` ahead, on the hour; each call a later hour than the last, so
    that bookings a test writes without choosing a time never clash in the slot guard."""
    start = datetime.now(UTC) + timedelta(days=days, hours=next(_slots) % 2000)
    return start.replace(minute=0, second=0, microsecond=0)


def write_booking(
    firestore: Any,
    *,
    start: datetime | None = None,
    minutes: int = 60,
    student_email: str | None = STUDENT_EMAIL,
    **fields: Any,
) -> Booking:
    """A pending booking in the seed's shape, and its student, as the booking page writes them."""
    booking_id = f"class-{uuid.uuid4().hex[:12]}"
    preference_id = f"162275027-{uuid.uuid4().hex[:8]}"
    student_id = f"student-{uuid.uuid4().hex[:8]}"
    start = start or next_class_start()
    end = start + timedelta(minutes=minutes)
    user: dict[str, Any] = {"name": "Ana Student"}
    if student_email is not None:
        user["email"] = student_email
    firestore.collection(bookings.USERS).document(student_id).set(user)
    document = {
        "bookedById": student_id,
        "preferenceId": preference_id,
        "startTime": start,
        "endTime": end,
        "classType": "individual",
        "maxParticipants": 1,
        "learningFocus": "conversation",
        "classPrice": 15000,
        "status": "pending",
        **fields,
    }
    document = {k: v for k, v in document.items() if v is not None}
    firestore.collection(bookings.BOOKINGS).document(booking_id).set(document)
    return Booking(booking_id, preference_id, student_id, start, end)


def write_abandoned_checkouts(firestore: Any, count: int) -> None:
    """``count`` checkouts students opened and never paid, for classes that have ended:
    still ``pending``, as the booking page leaves them. Their ids sort before any
    ``write_booking`` id, so a query that reads pending bookings in id order up to a cap
    meets them first."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    batch = firestore.batch()
    for number in range(count):
        start = now - timedelta(days=2, hours=number)
        document = {
            "bookedById": f"student-gone-{number}",
            "preferenceId": f"162275027-gone-{number}",
            "startTime": start,
            "endTime": start + timedelta(hours=1),
            "classType": "individual",
            "maxParticipants": 1,
            "classPrice": 15000,
            "status": "pending",
            "createdAt": start - timedelta(days=1),
        }
        batch.set(
            firestore.collection(bookings.BOOKINGS).document(f"abandoned-{number:05d}"), document
        )
        if (number + 1) % 500 == 0:  # Firestore's limit of writes per batch
            batch.commit()
            batch = firestore.batch()
    batch.commit()


def payment(preference_id: str, status: str = "approved", **fields: Any) -> bytes:
    return json.dumps({"preferenceId": preference_id, "status": status, **fields}).encode()


def deliver(client: Any, data: bytes) -> int:
    """Post one Pub/Sub push delivery as a CloudEvent to the app; return the HTTP status."""
    response = client.post("/", json=pubsub_envelope(data), headers=cloud_event_headers())
    return int(response.status_code)


def deliver_until_acked(client: Any, data: bytes, attempts: int = 40) -> int:
    """Redeliver as Pub/Sub would until acknowledged; return how many deliveries it took."""
    for attempt in range(1, attempts + 1):
        if deliver(client, data) == 200:
            return attempt
        time.sleep(0.1)
    raise AssertionError(f"not acknowledged after {attempts} deliveries")


def post(url: str, data: bytes) -> int:
    """Post one delivery to a running functions-framework server."""
    status, _ = processes.http(
        "POST", url, body=pubsub_envelope(data), headers=cloud_event_headers(), timeout=60
    )
    return status


def read_booking(firestore: Any, booking_id: str) -> dict[str, Any]:
    return firestore.collection(bookings.BOOKINGS).document(booking_id).get().to_dict() or {}


def activities(firestore: Any) -> list[dict[str, Any]]:
    return [s.to_dict() for s in firestore.collection(bookings.ACTIVITIES).stream()]


def sandbox_calls(sandbox: Any, name: str) -> int:
    return int(sandbox.stats()["requests"].get(name, 0))


def classcal_events(sandbox: Any) -> list[dict[str, Any]]:
    """Every event on the school calendar (tombstones included)."""
    return list(sandbox.events(ADMIN_CALENDAR))


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def records(caplog: Any, **match: Any) -> list[logging.LogRecord]:
    """Log records whose structured fields equal every ``match`` item."""
    return [
        r
        for r in caplog.records
        if all(getattr(r, key, None) == value for key, value in match.items())
    ]
