"""Helpers of the group-class tests (not collected: no test_ prefix)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import functions_framework

from localstack.constants import ADMIN_CALENDAR as CALENDAR
from localstack.constants import CLIENT_ID
from localstack.processes import cloud_event_headers, pubsub_envelope
from shared.domain import event_shape
from shared.stores import bookings
from tests.support.scheduling import (
    app_client,
    deliver,
    payment,
    read_booking,
    write_booking,
)

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
ID_TOKEN_SCOPES = ["openid", "https://www.googleapis.com/auth/userinfo.email"]
TOPIC = "guest-changes"


@dataclass(frozen=True)
class Student:
    user_id: str
    email: str
    token: str


@dataclass(frozen=True)
class GroupClass:
    booking_id: str
    code: str
    host_id: str

    @property
    def event_id(self) -> str:
        return event_shape.event_id_for(self.booking_id)


def join_app() -> Any:
    """functions-framework's real app for join_class, with its test client."""
    return functions_framework.create_app(
        "join_class", str(FUNCTIONS / "join_class" / "main.py")
    ).test_client()


def guests_app() -> Any:
    """functions-framework's real app for guest_invitations, with its test client."""
    return functions_framework.create_app(
        "guest_invitations", str(FUNCTIONS / "guest_invitations" / "main.py")
    ).test_client()


def id_token(sandbox: Any, email: str) -> str:
    """A Google ID token the sandbox signs for ``email``, audience classcal's client."""
    return str(sandbox.issue_token(email, CLIENT_ID, ID_TOKEN_SCOPES)["id_token"])


def student(firestore: Any, sandbox: Any, name: str, *, email: str | None = None) -> Student:
    """A user of the school (a ``users`` document) and a fresh ID token of theirs."""
    user_id = f"user-{name}-{uuid.uuid4().hex[:6]}"
    email = email or f"{name}@students.example.test"
    firestore.collection(bookings.USERS).document(user_id).set({"email": email, "name": name})
    return Student(user_id, email, id_token(sandbox, email.lower()))


def scheduled_group_class(firestore: Any, seats: int = 4, **fields: Any) -> GroupClass:
    """A ``grupal`` booking paid and scheduled through create_event (event in the sandbox)."""
    booking = write_booking(firestore, classType="grupal", maxParticipants=seats, **fields)
    assert deliver(app_client(), payment(booking.preference_id)) == 200
    data = read_booking(firestore, booking.booking_id)
    assert data["status"] == "scheduled", data
    return GroupClass(booking.booking_id, data["accessCode"], booking.student_id)


def stored_group_class(
    firestore: Any,
    *,
    seats: int = 4,
    start: datetime | None = None,
    status: str = "scheduled",
    class_type: str = "grupal",
    guests: list[str] | None = None,
) -> GroupClass:
    """A group class written straight into Firestore as scheduled (no Calendar event):
    enough for answers that never reach Google."""
    booking_id = f"class-{uuid.uuid4().hex[:12]}"
    host_id = f"host-{uuid.uuid4().hex[:6]}"
    code = uuid.uuid4().hex[:8].upper()
    start = start or datetime.now(UTC) + timedelta(days=2)
    guests = guests or []
    firestore.collection(bookings.BOOKINGS).document(booking_id).set(
        {
            "bookedById": host_id,
            "preferenceId": f"pref-{booking_id}",
            "startTime": start,
            "endTime": start + timedelta(hours=1),
            "classType": class_type,
            "maxParticipants": seats,
            "currentParticipants": 1 + len(guests),
            "participantsIds": guests,
            "status": status,
            "accessCode": code,
            "htmlLink": "https://meet.google.com/abc-defg-hij",
            "googleEventId": event_shape.event_id_for(booking_id),
        }
    )
    return GroupClass(booking_id, code, host_id)


def call(
    client: Any,
    token: str | None,
    body: Any,
    *,
    method: str = "POST",
    origin: str | None = None,
) -> Any:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if origin is not None:
        headers["Origin"] = origin
    if isinstance(body, bytes | str):
        return client.open(
            "/", method=method, data=body, headers=headers, content_type="application/json"
        )
    return client.open("/", method=method, json=body, headers=headers)


def nudge(client: Any, booking_id: str) -> int:
    """Deliver one guest-changes message to guest_invitations; the HTTP status."""
    data = f'{{"bookingId": "{booking_id}"}}'.encode()
    response = client.post(
        "/",
        json=pubsub_envelope(data, subscription="guest-changes-guest-invitations"),
        headers=cloud_event_headers(topic=TOPIC),
    )
    return int(response.status_code)


def event(sandbox: Any, event_id: str) -> dict[str, Any]:
    [found] = [e for e in sandbox.events(CALENDAR) if e["id"] == event_id]
    return found


def attendee_emails(sandbox: Any, event_id: str) -> list[str]:
    return [a["email"] for a in event(sandbox, event_id).get("attendees", [])]


def guest_activities(firestore: Any, booking_id: str) -> dict[str, dict[str, Any]]:
    """The class's guest activities, by user id."""
    found = {}
    for snapshot in firestore.collection(bookings.ACTIVITIES).stream():
        data = snapshot.to_dict() or {}
        if data.get("classId") == booking_id and data.get("rol") == "invitado":
            found[data["userId"]] = data
    return found


def everything(firestore: Any) -> dict[str, dict[str, Any]]:
    """Every document of the collections a join or leave may write, for 'changed nothing'."""
    state = {}
    for collection in (bookings.BOOKINGS, bookings.ACTIVITIES, bookings.USERS):
        for snapshot in firestore.collection(collection).stream():
            state[f"{collection}/{snapshot.id}"] = snapshot.to_dict()
    return state
