"""The booking-change message contract (topic ``booking-changes``): a message becomes plain values.

A message's data is UTF-8 JSON, one of::

    {"action": "reschedule", "bookingId": str, "startTime": str, "endTime": str,
     "requestedAt": str}
    {"action": "cancel", "bookingId": str, "reason": str}

Times are RFC 3339 with a ``Z`` or an offset (``2026-03-15T10:00:00-03:00``, at most
microseconds). ``endTime`` is after ``startTime`` and at most 24 hours later;
``requestedAt`` is when the platform made the request and may not be more than
``MAX_CLOCK_SKEW`` ahead of classcal's clock. Types are strict (a number is not a
string), strings have length limits and no control characters, and unknown keys are
ignored. Anything else is InvalidMessage: logged, acknowledged, nothing written.

What a change does is ``shared.domain.booking_changes``'s business.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core import ids
from shared.core.errors import InvalidMessage
from shared.domain import booking_changes
from shared.web.pubsub import PubSubMessage

MAX_BOOKING_ID = 256
MAX_REASON = 500
MAX_CLASS = timedelta(hours=24)
MAX_CLOCK_SKEW = timedelta(minutes=5)
ACTIONS = ("reschedule", "cancel")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


@dataclass(frozen=True)
class Reschedule:
    booking_id: str
    start: datetime
    end: datetime
    requested_at: datetime


@dataclass(frozen=True)
class Cancel:
    booking_id: str
    reason: str


def _text(data: Mapping[str, Any], key: str, limit: int) -> str:
    value = data.get(key)
    if value is None:
        raise InvalidMessage(f"{key} is missing")
    if not isinstance(value, str):
        raise InvalidMessage(f"{key} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidMessage(f"{key} is empty")
    if len(value) > limit:
        raise InvalidMessage(f"{key} is {len(value)} characters, over {limit}")
    if not value.isprintable():
        raise InvalidMessage(f"{key} contains control characters")
    return value


def _instant(data: Mapping[str, Any], key: str) -> datetime:
    value = _text(data, key, 64)
    if not _RFC3339.fullmatch(value):
        raise InvalidMessage(f"{key} must be an RFC 3339 time with an offset, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidMessage(f"{key} {value!r} is not a valid time") from None


def parse_change(data: Mapping[str, Any], *, now: datetime | None = None) -> Reschedule | Cancel:
    """The message's JSON object as a change, or InvalidMessage saying what is wrong."""
    action = _text(data, "action", 32)
    if action not in ACTIONS:
        raise InvalidMessage(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    booking_id = _text(data, "bookingId", MAX_BOOKING_ID)
    if not ids.is_document_id(booking_id):
        raise InvalidMessage("bookingId is not a booking id (no '/', not '.' or '__x__')")
    if action == "cancel":
        return Cancel(booking_id, _text(data, "reason", MAX_REASON))
    start = _instant(data, "startTime")
    end = _instant(data, "endTime")
    requested_at = _instant(data, "requestedAt")
    if end <= start:
        raise InvalidMessage("endTime must be after startTime")
    if end - start > MAX_CLASS:
        raise InvalidMessage("a class lasts at most 24 hours")
    if requested_at > (now or datetime.now(UTC)) + MAX_CLOCK_SKEW:
        # It would make every later request look older than it: refuse it instead.
        raise InvalidMessage("requestedAt is in the future")
    return Reschedule(booking_id, start, end, requested_at)


def handle_booking_change_message(message: PubSubMessage) -> dict[str, Any]:
    """The booking_changes handler: parse the message, then make the change."""
    change = parse_change(message.json_object())
    if isinstance(change, Cancel):
        return booking_changes.cancel(change.booking_id, note=change.reason)
    return booking_changes.reschedule(
        change.booking_id,
        start=change.start,
        end=change.end,
        requested_at=change.requested_at,
    )
