"""What a class looks like in Google Calendar, derived from its booking, and read back.

The event id, the Meet ``requestId`` and the host's activity id are derived from the
booking id, so every attempt (and every redelivery) names the same things: a repeated
insert gets 409 instead of a second event. ``event_body`` is the one place that shapes
a class's event; ``meet_link`` and ``conference_status`` read one. Used by scheduling
and by the calendar sync. Pure: no I/O.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.core.config import Config
from shared.core.errors import ConfigError, InvalidBooking

BOOKING_ID_PROPERTY = "classcalBookingId"  # extendedProperties.private key on our events
HOST_TYPE = "anfitrion"
GUEST_TYPE = "invitado"


# --- deterministic identifiers ---


def event_id_for(booking_id: str) -> str:
    """The booking's Calendar event id: base32hex (0-9, a-v) of a hash of the booking id.

    Calendar accepts client ids of 5-1024 base32hex characters, unique per calendar
    (deleted events included), so an insert with this id happens at most once.
    """
    digest = hashlib.sha256(f"classcal:{booking_id}".encode()).digest()
    return base64.b32hexencode(digest).decode("ascii").rstrip("=").lower()


def conference_request_id(booking_id: str) -> str:
    """The Meet createRequest id: the same on every attempt, so Google makes one room."""
    return f"classcal-{event_id_for(booking_id)}"


def activity_id_for(booking_id: str) -> str:
    """The host's ``userActivities`` document id for a booking (one per booking)."""
    return f"{booking_id}-{HOST_TYPE}"


def guest_activity_id_for(booking_id: str, user_id: str) -> str:
    """A guest's ``userActivities`` document id for a group class (one per guest)."""
    return f"{booking_id}-{GUEST_TYPE}-{user_id}"


def guest_activity_ids(booking_id: str, data: Mapping[str, Any]) -> list[str]:
    """The activities of a class's current guests (``participantsIds``)."""
    guests = data.get("participantsIds") or []
    return [guest_activity_id_for(booking_id, g) for g in guests if isinstance(g, str) and g]


# --- reading a booking ---


def parse_time(value: Any, name: str) -> datetime:
    """A booking time: a Firestore timestamp or an RFC 3339 string with an offset."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and 0 < len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidBooking(f"{name} {value!r} is not an RFC 3339 time") from None
    elif value is None:
        raise InvalidBooking(f"the booking has no {name}", code="missing_time")
    else:
        raise InvalidBooking(f"{name} is a {type(value).__name__}, not a timestamp")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidBooking(f"{name} {value!r} has no time zone offset")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset that crosses the range
        raise InvalidBooking(f"{name} {value!r} is out of range", code="bad_times") from None


def booking_times(data: Mapping[str, Any]) -> tuple[datetime, datetime]:
    start = parse_time(data.get("startTime"), "startTime")
    end = parse_time(data.get("endTime"), "endTime")
    if end <= start:
        raise InvalidBooking("the booking's endTime is not after its startTime", code="bad_times")
    return start, end


class _Template(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        raise KeyError(key)


def _render(template: str, variable: str, values: Mapping[str, Any]) -> str:
    try:
        return template.format_map(_Template(values))
    except (KeyError, IndexError, ValueError, AttributeError) as error:
        raise ConfigError(
            f"{variable} has a placeholder classcal does not know ({error}); use "
            "{classType}, {participants} or {learningFocus}"
        ) from None


def event_body(
    booking_id: str,
    data: Mapping[str, Any],
    start: datetime,
    end: datetime,
    student_email: str | None,
    config: Config,
) -> dict[str, Any]:
    """The Calendar event for a booking: the seed's text, times in CALENDAR_TIMEZONE."""
    max_participants = data.get("maxParticipants")
    values = {
        "classType": data.get("classType") or "",
        # The seed shows x1 when a class has no participant limit (0).
        "participants": max_participants
        if isinstance(max_participants, int) and max_participants > 0
        else 1,
        "learningFocus": data.get("learningFocus") or "",
    }
    body: dict[str, Any] = {
        "id": event_id_for(booking_id),
        "summary": _render(config.event_summary, "EVENT_SUMMARY", values),
        "description": _render(config.event_description, "EVENT_DESCRIPTION", values),
        **event_times(start, end, config),
        "transparency": "opaque",
        "extendedProperties": {"private": {BOOKING_ID_PROPERTY: booking_id}},
        "conferenceData": {
            "createRequest": {
                "requestId": conference_request_id(booking_id),
                "conferenceSolutionKey": {"type": "hangoutsMeet"},
            }
        },
    }
    if student_email:
        body["attendees"] = [{"email": student_email}]
    reminders = event_reminders(config)
    if reminders is not None:
        body["reminders"] = reminders
    return body


def event_times(start: datetime, end: datetime, config: Config) -> dict[str, Any]:
    """An event's ``start`` and ``end`` in CALENDAR_TIMEZONE (the body of a move, too)."""
    zone = config.timezone
    return {
        "start": {"dateTime": start.astimezone(zone).isoformat(), "timeZone": zone.key},
        "end": {"dateTime": end.astimezone(zone).isoformat(), "timeZone": zone.key},
    }


def event_reminders(config: Config) -> dict[str, Any] | None:
    """EVENT_REMINDERS as the event's reminder overrides; None keeps the calendar's defaults.

    Reminders belong to the calendar they are set on: these are the organiser's (the
    school calendar's); each attendee's own calendar applies that attendee's defaults.
    """
    if not config.event_reminders:
        return None
    return {
        "useDefault": False,
        "overrides": [{"method": m, "minutes": n} for m, n in config.event_reminders],
    }


# --- reading an event ---


def conference_status(event: Mapping[str, Any]) -> str | None:
    """``pending``, ``success`` or ``failure``; None when the event has no conference."""
    if meet_link(event):
        # A link is what counts: one added by hand in Google Calendar after a failed
        # request, or one made earlier, may come without a successful createRequest.
        return "success"
    conference = event.get("conferenceData")
    if not isinstance(conference, dict):
        return None
    status = ((conference.get("createRequest") or {}).get("status") or {}).get("statusCode")
    return status if isinstance(status, str) else None


def meet_link(event: Mapping[str, Any]) -> str | None:
    """The event's Meet URI (its video entry point), or None while it has none."""
    conference = event.get("conferenceData") or {}
    for entry in conference.get("entryPoints") or []:
        if isinstance(entry, dict) and entry.get("entryPointType") == "video" and entry.get("uri"):
            return str(entry["uri"])
    link = event.get("hangoutLink")
    return str(link) if link else None


def event_time(event: Mapping[str, Any], key: str, fallback: datetime) -> datetime:
    value = (event.get(key) or {}).get("dateTime")
    try:
        return parse_time(value, key)
    except InvalidBooking:
        return fallback


def booking_id_of(event: Mapping[str, Any]) -> str | None:
    """The booking id classcal wrote into an event's private properties, if any."""
    private = (event.get("extendedProperties") or {}).get("private")
    value = private.get(BOOKING_ID_PROPERTY) if isinstance(private, dict) else None
    return value if isinstance(value, str) else None
