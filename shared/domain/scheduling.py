"""The domain rules: a paid booking becomes one Calendar event with a Meet link, exactly once.

``schedule_booking`` is the one code path that schedules (the payment function and
maintenance both call it); ``cancel_booking`` the one that cancels. Both are safe to
run any number of times, concurrently, and after a crash at any point:

- a Firestore lease keeps two deliveries from working on one booking at once;
- the Calendar event id, the Meet ``requestId`` and the user activity's document id are
  derived from the booking id, so a repeated insert gets 409 (and the event is fetched)
  instead of a second event, and the user activity can only be created once;
- the final write is one transaction that sets the access code only when none is set.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.core.config import Config, get_config
from shared.core.errors import (
    AdminReconnectRequired,
    ClasscalError,
    ConferenceFailed,
    ConferencePending,
    ConfigError,
    Duplicate,
    Gone,
    GoogleUnavailable,
    InvalidBooking,
    NotFound,
    PermanentError,
    StoreUnavailable,
    TransientError,
)
from shared.core.logs import get_logger
from shared.google import calendar
from shared.stores import bookings, db

if TYPE_CHECKING:
    from shared.web.payments import Payment

log = get_logger(__name__)

BOOKING_ID_PROPERTY = "classcalBookingId"  # extendedProperties.private key on our events
HOST_TYPE = "anfitrion"
ACCESS_CODE_LENGTH = 8
# No 0/O, 1/I/L: the code is read aloud and typed by hand.
ACCESS_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Plain-language text stored on a booking that waits, by error code.
WAITING_MESSAGES = {
    AdminReconnectRequired.code: (
        "Waiting for the school admin to reconnect the school's Google account: Google no "
        "longer accepts the stored authorization. The class is scheduled automatically "
        "once the admin reconnects."
    ),
    GoogleUnavailable.code: (
        "Google Calendar is busy or unavailable right now; scheduling is retried automatically."
    ),
    ConferencePending.code: (
        "The Calendar event exists; Google is still creating its Meet link. Retried automatically."
    ),
    StoreUnavailable.code: "The database did not answer; scheduling is retried automatically.",
}


@dataclass(frozen=True)
class Outcome:
    """What one scheduling or cancellation did. ``outcome`` is one of ``scheduled``,
    ``already_scheduled``, ``cancelled``, ``already_cancelled``."""

    booking_id: str
    outcome: str
    event_id: str | None = None
    preference_id: str | None = None
    calendar_calls: dict[str, int] = field(default_factory=dict)

    def log_fields(self) -> dict[str, Any]:
        return {
            "booking_id": self.booking_id,
            "preference_id": self.preference_id,
            "outcome": self.outcome,
            "calendar_event_id": self.event_id,
            "calendar_calls": dict(self.calendar_calls),
        }


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


def new_access_code() -> str:
    return "".join(secrets.choice(ACCESS_CODE_ALPHABET) for _ in range(ACCESS_CODE_LENGTH))


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
    zone = config.timezone
    body: dict[str, Any] = {
        "id": event_id_for(booking_id),
        "summary": _render(config.event_summary, "EVENT_SUMMARY", values),
        "description": _render(config.event_description, "EVENT_DESCRIPTION", values),
        "start": {"dateTime": start.astimezone(zone).isoformat(), "timeZone": zone.key},
        "end": {"dateTime": end.astimezone(zone).isoformat(), "timeZone": zone.key},
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
    return body


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


def _event_time(event: Mapping[str, Any], key: str, fallback: datetime) -> datetime:
    value = (event.get(key) or {}).get("dateTime")
    try:
        return parse_time(value, key)
    except InvalidBooking:
        return fallback


# --- scheduling ---


def _payment_fields(payment: Payment | None) -> dict[str, Any]:
    return payment.booking_fields() if payment is not None else {}


def _student_email(data: Mapping[str, Any], booking_id: str) -> str | None:
    user_id = data.get("bookedById")
    if not db.is_document_id(user_id):
        log.warning("the booking names no student; no attendee", extra={"booking_id": booking_id})
        return None
    email = bookings.get_user_email(user_id)
    if email is None or len(email) > 254 or not _EMAIL.match(email):
        # The class still happens: the student finds the Meet link on the booking.
        log.warning(
            "the student has no usable email; the event has no attendee",
            extra={"booking_id": booking_id},
        )
        return None
    return email


def _existing_event(event_id: str, booking_id: str) -> dict[str, Any]:
    """The event an earlier attempt made with this booking's id (after a 409)."""
    event = calendar.get_event(event_id)
    private = (event.get("extendedProperties") or {}).get("private") or {}
    if private.get(BOOKING_ID_PROPERTY) not in (None, booking_id):
        raise PermanentError(
            f"Calendar event {event_id} belongs to another booking", code="event_id_taken"
        )
    if event.get("status") == "cancelled":
        # The id can never be used again, and someone deleted this class's event in
        # Google Calendar on purpose: making a different event would undo that choice.
        raise PermanentError(
            f"the class's Calendar event {event_id} was deleted in Google Calendar; it is "
            "not re-created (restore it from the calendar's trash, or cancel the booking)",
            code="event_deleted",
        )
    return event


def _await_conference(
    event: dict[str, Any], delays: tuple[float, ...], sleep: Callable[[float], None]
) -> dict[str, Any]:
    """Read the event again while its Meet conference is pending, with short waits."""
    for delay in delays:
        if conference_status(event) != "pending":
            break
        sleep(delay)
        event = calendar.get_event(str(event["id"]))
    return event


def schedule_booking(
    booking_id: str,
    payment: Payment | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Schedule the booking: one Calendar event with a Meet link, the booking completed.

    Idempotent. Returns an Outcome (``scheduled``, ``already_scheduled``, ``cancelled``).
    Raises PermanentError subclasses after recording them on the booking (``failed``),
    TransientError after recording why it waits (``waiting``), BookingBusy (transient,
    nothing recorded) while another delivery holds the booking.
    """
    config = get_config()
    owner = uuid.uuid4().hex
    amount = payment.amount if payment is not None else None
    with calendar.count_calls() as calls:
        claim = bookings.claim_for_scheduling(
            booking_id,
            owner=owner,
            lease_seconds=config.scheduling_lease_seconds,
            payment_fields=_payment_fields(payment),
            price=amount,
        )
        preference_id = claim.data.get("preferenceId")
        context = {"booking_id": booking_id, "preference_id": preference_id}
        if claim.state == bookings.SCHEDULED:
            return Outcome(
                booking_id,
                "already_scheduled",
                claim.data.get("googleEventId"),
                preference_id,
                dict(calls),
            )
        if claim.state == bookings.CANCELLED:
            if claim.data.get("eventDeleted") is False:
                # A cancellation has not finished removing the event yet: finish it.
                _cancel(booking_id, claim.data.get("cancellationReason") or "cancelled", None)
            log.info("the booking is cancelled; not scheduling it", extra=context)
            return Outcome(booking_id, "cancelled", None, preference_id, dict(calls))
        try:
            event_id = _schedule_claimed(booking_id, claim.data, owner, config, sleep)
        except _Cancelled:
            log.info("the booking was cancelled while being scheduled", extra=context)
            return Outcome(booking_id, "cancelled", None, preference_id, dict(calls))
        except _Stop as stop:
            _stop(booking_id, owner, stop.error, context, calls, stop.fields)
            raise stop.error from None
        except ClasscalError as error:
            _stop(booking_id, owner, error, context, calls)
            raise
        except Exception:
            log.exception("unexpected error while scheduling", extra=context)
            _release_quietly(
                booking_id,
                owner,
                bookings.WAITING,
                "unexpected_error",
                "An unexpected error stopped scheduling; it is retried automatically.",
            )
            raise
    log.info(
        "class scheduled",
        extra={
            **context,
            "calendar_event_id": event_id,
            "outcome": "scheduled",
            "calendar_calls": calls,
        },
    )
    return Outcome(booking_id, "scheduled", event_id, preference_id, dict(calls))


def _schedule_claimed(
    booking_id: str,
    data: Mapping[str, Any],
    owner: str,
    config: Config,
    sleep: Callable[[float], None],
) -> str:
    start, end = booking_times(data)
    if start < datetime.now(UTC) - timedelta(minutes=config.past_grace_minutes):
        raise InvalidBooking(
            f"the class started at {start.isoformat()}, more than "
            f"{config.past_grace_minutes} minutes ago",
            code="class_in_past",
        )
    if not isinstance(data.get("classType"), str) or not data.get("classType"):
        raise InvalidBooking("the booking has no classType", code="missing_class_type")
    body = event_body(booking_id, data, start, end, _student_email(data, booking_id), config)
    event_id = body["id"]
    try:
        event = calendar.insert_event(body, send_updates=config.send_updates)
    except Duplicate:
        # An earlier attempt made it (its answer may have been lost): carry on with it.
        event = _existing_event(event_id, booking_id)
    event = _await_conference(event, config.conference_poll_delays, sleep)
    found = {"googleEventId": event_id, "calendarLink": event.get("htmlLink")}
    status = conference_status(event)
    link = meet_link(event)
    if status == "pending":
        raise _Stop(ConferencePending("Google is still creating the Meet conference"), found)
    if status != "success" or not link:
        raise _Stop(
            ConferenceFailed(
                f"Google could not create the Meet conference (status {status}); the "
                "Calendar event exists without a Meet link: add one in Google Calendar"
            ),
            found,
        )
    access_code = new_access_code()
    fields = {
        "googleEventId": event_id,
        "startTime": _event_time(event, "start", start),
        "endTime": _event_time(event, "end", end),
        "maxParticipants": data.get("maxParticipants"),
        "currentParticipants": 1,
        "htmlLink": link,
        "summary": f"{event.get('summary', '')}. {event.get('description', '')}",
        "learningFocus": data.get("learningFocus"),
        "preferenceId": data.get("preferenceId"),
        "hostType": HOST_TYPE,
        "classType": data.get("classType"),
        "calendarLink": event.get("htmlLink"),
    }
    price = data.get("classPrice")
    if price is not None:
        fields["classPrice"] = price
    activity = {
        "userId": data.get("bookedById"),
        "classId": booking_id,
        "taskId": None,
        "rol": HOST_TYPE,
        "completed": False,
    }
    result = bookings.complete_scheduling(
        booking_id,
        fields=fields,
        access_code=access_code,
        activity_id=activity_id_for(booking_id),
        activity=activity,
    )
    if result == bookings.CANCELLED:
        # Cancelled while this delivery made the event: take the event away again.
        _cancel(booking_id, data.get("cancellationReason") or "cancelled", None, owner=owner)
        raise _Cancelled
    return event_id


class _Stop(Exception):
    """A failure that also records what was found (the event) on the booking."""

    def __init__(self, error: ClasscalError, fields: dict[str, Any]) -> None:
        super().__init__(error.message)
        self.error = error
        self.fields = fields


class _Cancelled(Exception):
    """The booking was cancelled while it was being scheduled."""


def _stop(
    booking_id: str,
    owner: str,
    error: ClasscalError,
    context: dict[str, Any],
    calls: Mapping[str, int],
    fields: Mapping[str, Any] | None = None,
) -> None:
    """Record why scheduling stopped on the booking and log it; the caller re-raises."""
    if isinstance(error, PermanentError):
        state, severity = bookings.FAILED, log.error
        message = error.message
    else:
        state, severity = bookings.WAITING, log.warning
        message = WAITING_MESSAGES.get(error.code, f"Retried automatically: {error.message}")
        if isinstance(error, ConfigError):
            severity = log.error
            message = f"classcal is misconfigured and waits for a fix: {error.message}"
    _release_quietly(booking_id, owner, state, error.code, message, fields)
    severity(
        f"scheduling stopped: {error.message}",
        extra={
            **context,
            "outcome": state,
            "reason": error.code,
            "calendar_calls": dict(calls),
        },
    )


def _release_quietly(
    booking_id: str,
    owner: str,
    state: str,
    reason: str,
    message: str,
    fields: Mapping[str, Any] | None = None,
) -> None:
    """Give the lease back; if even that fails, the lease expires by itself."""
    try:
        bookings.release_lease(
            booking_id, owner=owner, state=state, reason=reason, message=message, fields=fields
        )
    except ClasscalError as error:
        log.warning(
            f"could not record the booking's state: {error.message}",
            extra={"booking_id": booking_id, "reason": error.code},
        )


# --- cancellation ---


def cancel_booking(booking_id: str, *, reason: str, payment: Payment | None = None) -> Outcome:
    """Cancel the booking: status ``cancelled``, its Calendar event deleted, its activity marked.

    Idempotent: a second call, or an event already deleted in Google, is success. A
    booking that never reached Calendar gets its status and payment recorded and no
    Calendar call. Raises TransientError (after recording why) when the event could
    not be deleted yet; BookingBusy while a scheduling delivery holds the booking.
    """
    with calendar.count_calls() as calls:
        outcome = _cancel(booking_id, reason, payment)
    return Outcome(
        booking_id, outcome.outcome, outcome.event_id, outcome.preference_id, dict(calls)
    )


def _cancel(
    booking_id: str, reason: str, payment: Payment | None, *, owner: str | None = None
) -> Outcome:
    config = get_config()
    owner = owner or uuid.uuid4().hex
    claim = bookings.claim_for_cancellation(
        booking_id,
        owner=owner,
        lease_seconds=config.scheduling_lease_seconds,
        reason=reason,
        payment_fields=_payment_fields(payment),
    )
    data = claim.data
    context = {"booking_id": booking_id, "preference_id": data.get("preferenceId")}
    if claim.state == "already_cancelled":
        return Outcome(booking_id, "already_cancelled", None, context["preference_id"])
    event_id = data.get("googleEventId")
    attempts = data.get("schedulingAttempts")
    if not event_id and isinstance(attempts, int) and attempts > 0:
        # An attempt may have made the event and died before recording it.
        event_id = event_id_for(booking_id)
    if isinstance(event_id, str) and event_id:
        try:
            calendar.delete_event(event_id, send_updates=config.send_updates)
        except (NotFound, Gone):
            pass  # never made, or already deleted (410): the goal is met
        except (TransientError, ConfigError) as error:
            message = (
                "The class is cancelled; removing its Calendar event waits: "
                + WAITING_MESSAGES.get(error.code, error.message)
            )
            _release_quietly(booking_id, owner, bookings.WAITING, error.code, message)
            log.warning(
                f"cancellation waits: {error.message}",
                extra={**context, "outcome": bookings.WAITING, "reason": error.code},
            )
            raise
    bookings.complete_cancellation(booking_id, owner=owner, activity_id=activity_id_for(booking_id))
    log.info(
        "class cancelled",
        extra={
            **context,
            "calendar_event_id": event_id,
            "outcome": "cancelled",
            "reason": reason,
        },
    )
    return Outcome(booking_id, "cancelled", event_id, context["preference_id"])
