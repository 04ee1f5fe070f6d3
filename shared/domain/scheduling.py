"""Scheduling a class: a paid booking becomes one Calendar event with a Meet link, exactly once.

``schedule_booking`` is the one code path that schedules (the payment function and
maintenance both call it; ``shared.domain.cancellation`` is the one that cancels). It is
safe to run any number of times, concurrently, and after a crash at any point:

- a Firestore lease keeps two deliveries from working on one booking at once;
- the Calendar event id, the Meet ``requestId`` and the user activity's document id are
  derived from the booking id, so a repeated insert gets 409 (and the event is fetched)
  instead of a second event, and the user activity can only be created once;
- the final write is one transaction that sets the access code only when none is set.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core import ids, retry
from shared.core.config import Config, get_config
from shared.core.errors import (
    ClasscalError,
    ConferenceFailed,
    ConferencePending,
    ConfigError,
    Duplicate,
    InvalidAttendee,
    InvalidBooking,
    NotFound,
    PermanentError,
)
from shared.core.logs import get_logger
from shared.domain import cancellation, event_shape, mirror, outcome, refunds
from shared.google import calendar
from shared.stores import bookings, slots

log = get_logger(__name__)

ACCESS_CODE_LENGTH = 8
# No 0/O, 1/I/L: the code is read aloud and typed by hand.
ACCESS_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def new_access_code() -> str:
    return "".join(secrets.choice(ACCESS_CODE_ALPHABET) for _ in range(ACCESS_CODE_LENGTH))


# --- scheduling ---


# Why a class's event does not invite its student (``studentInviteReason``).
NO_STUDENT = "no_student"  # the booking names no student
NO_USABLE_EMAIL = "no_usable_email"  # the student has no address classcal could use
REFUSED_BY_GOOGLE = "attendee_refused_by_google"  # Google answered 400 invalid attendee


def _student_email(data: Mapping[str, Any], booking_id: str) -> tuple[str | None, str | None]:
    """The student's address to invite, or None and the reason there is none."""
    user_id = data.get("bookedById")
    if not ids.is_document_id(user_id):
        log.warning("the booking names no student; no attendee", extra={"booking_id": booking_id})
        return None, NO_STUDENT
    email = bookings.get_user_email(user_id)
    if email is None or len(email) > 254 or not _EMAIL.match(email):
        # The class still happens: the student finds the Meet link on the booking.
        log.warning(
            "the student has no usable email; the event has no attendee",
            extra={"booking_id": booking_id, "reason": NO_USABLE_EMAIL},
        )
        return None, NO_USABLE_EMAIL
    return email, None


def _insert(body: dict[str, Any], booking_id: str, config: Config) -> dict[str, Any]:
    """Insert the class's event. When Google refuses the student's address (400 invalid
    attendee), the class is not lost: the same event (same id) is made without attendees,
    and the booking records that the student was not invited."""
    try:
        return calendar.insert_event(body, send_updates=config.send_updates)
    except NotFound:
        # An insert finds no calendar: CALENDAR_ID names one the connected account
        # cannot see. Kept (retried) until the deployment or the connection is fixed.
        raise ConfigError(
            f"Google Calendar has no calendar {config.calendar_id!r} for the connected "
            "account: check CALENDAR_ID, or reconnect with the account that owns it"
        ) from None
    except InvalidAttendee:
        if not body.get("attendees"):
            raise
    log.warning(
        "Google refused the student's email address; the class is scheduled without inviting them",
        extra={"booking_id": booking_id, "reason": REFUSED_BY_GOOGLE},
    )
    uninvited = {k: v for k, v in body.items() if k != "attendees"}
    return calendar.insert_event(uninvited, send_updates=config.send_updates)


def _invitation(event: Mapping[str, Any], email: str | None, reason: str | None) -> dict[str, Any]:
    """``studentInvited`` (and why not) as the event itself shows it, so a retry that
    finds an earlier attempt's event records the same."""
    attendees = event.get("attendees") or []
    invited = email is not None and any(
        isinstance(a, dict) and str(a.get("email", "")).lower() == email.lower() for a in attendees
    )
    if invited:
        return {"studentInvited": True}
    return {"studentInvited": False, "studentInviteReason": reason or REFUSED_BY_GOOGLE}


def _existing_event(event_id: str, booking_id: str) -> dict[str, Any]:
    """The event an earlier attempt made with this booking's id (after a 409)."""
    event = calendar.get_event(event_id)
    private = (event.get("extendedProperties") or {}).get("private") or {}
    if private.get(event_shape.BOOKING_ID_PROPERTY) not in (None, booking_id):
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
        if event_shape.conference_status(event) != "pending":
            break
        sleep(delay)
        event = calendar.get_event(str(event["id"]))
    return event


def schedule_booking(
    booking_id: str,
    payment_fields: Mapping[str, Any] | None = None,
    *,
    price: float | None = None,
    sleep: Callable[[float], None] = retry.sleep,
) -> outcome.Outcome:
    """Schedule the booking: one Calendar event with a Meet link, the booking completed.

    Idempotent. Returns an Outcome (``scheduled``, ``already_scheduled``, ``cancelled``,
    ``slot_taken`` when the slot guard found the time taken: nothing was created;
    ``slot_taken_refunded`` / ``slot_taken_refund_refused`` when, moreover, its
    MercadoPago payment was refunded or the refund refused: see ``shared.domain.refunds``).
    Raises PermanentError subclasses after recording them on the booking (``failed``),
    TransientError after recording why it waits (``waiting``), BookingBusy (transient,
    nothing recorded) while another delivery holds the booking.
    """
    config = get_config()
    owner = uuid.uuid4().hex
    with calendar.count_calls() as calls:
        claim = bookings.claim_for_scheduling(
            booking_id,
            owner=owner,
            lease_seconds=config.scheduling_lease_seconds,
            payment_fields=dict(payment_fields or {}),
            price=price,
            guard=slots.Guard(config.calendar_id, config.hold_minutes)
            if config.slot_guard
            else None,
        )
        preference_id = claim.data.get("preferenceId")
        context = {"booking_id": booking_id, "preference_id": preference_id}
        if claim.state == bookings.SLOT_TAKEN:
            taken = claim.data["slotTaken"]
            payment_id = refunds.refundable({**claim.data, **dict(payment_fields or {})})
            if payment_id is not None:
                # Paid through MercadoPago: refund it, once, instead of asking a person.
                result = refunds.refund_slot_taken(
                    booking_id, payment_id, {**context, "clash": taken.what}
                )
                return outcome.Outcome(booking_id, result, None, preference_id, dict(calls))
            # The student paid for a time someone else has: a person must act (refund or
            # move the class). Acknowledged: a redelivery would find the same.
            log.error(
                "slot taken: no event created",
                extra={
                    **context,
                    "outcome": "failed",
                    "reason": bookings.SLOT_TAKEN,
                    "clash": taken.what,
                    "clash_start": taken.start.isoformat(),
                    "clash_end": taken.end.isoformat(),
                },
            )
            return outcome.Outcome(
                booking_id, bookings.SLOT_TAKEN, None, preference_id, dict(calls)
            )
        if claim.state == bookings.SCHEDULED:
            return outcome.Outcome(
                booking_id,
                "already_scheduled",
                claim.data.get("googleEventId"),
                preference_id,
                dict(calls),
            )
        if claim.state == bookings.CANCELLED:
            if claim.data.get("eventDeleted") is False:
                # A cancellation has not finished removing the event yet: finish it.
                cancellation.cancel(
                    booking_id, claim.data.get("cancellationReason") or "cancelled", None
                )
            log.info("the booking is cancelled; not scheduling it", extra=context)
            return outcome.Outcome(booking_id, "cancelled", None, preference_id, dict(calls))
        try:
            event_id = _schedule_claimed(booking_id, claim.data, owner, config, sleep)
        except _Cancelled:
            log.info("the booking was cancelled while being scheduled", extra=context)
            return outcome.Outcome(booking_id, "cancelled", None, preference_id, dict(calls))
        except _Stop as stop:
            _stop(booking_id, owner, stop.error, context, calls, stop.fields)
            raise stop.error from None
        except ClasscalError as error:
            _stop(booking_id, owner, error, context, calls)
            raise
        except Exception:
            log.exception("unexpected error while scheduling", extra=context)
            outcome.release_quietly(
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
    return outcome.Outcome(booking_id, "scheduled", event_id, preference_id, dict(calls))


def _schedule_claimed(
    booking_id: str,
    data: Mapping[str, Any],
    owner: str,
    config: Config,
    sleep: Callable[[float], None],
) -> str:
    start, end = event_shape.booking_times(data)
    if start < datetime.now(UTC) - timedelta(minutes=config.past_grace_minutes):
        raise InvalidBooking(
            f"the class started at {start.isoformat()}, more than "
            f"{config.past_grace_minutes} minutes ago",
            code="class_in_past",
        )
    if not isinstance(data.get("classType"), str) or not data.get("classType"):
        raise InvalidBooking("the booking has no classType", code="missing_class_type")
    email, not_invited = _student_email(data, booking_id)
    body = event_shape.event_body(booking_id, data, start, end, email, config)
    event_id = body["id"]
    try:
        event = _insert(body, booking_id, config)
    except Duplicate:
        # An earlier attempt made it (its answer may have been lost): carry on with it.
        event = _existing_event(event_id, booking_id)
    event = _await_conference(event, config.conference_poll_delays, sleep)
    found = {"googleEventId": event_id, "calendarLink": event.get("htmlLink")}
    status = event_shape.conference_status(event)
    link = event_shape.meet_link(event)
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
        "startTime": event_shape.event_time(event, "start", start),
        "endTime": event_shape.event_time(event, "end", end),
        "maxParticipants": data.get("maxParticipants"),
        "currentParticipants": 1,
        "htmlLink": link,
        "summary": f"{event.get('summary', '')}. {event.get('description', '')}",
        "learningFocus": data.get("learningFocus"),
        "preferenceId": data.get("preferenceId"),
        "hostType": event_shape.HOST_TYPE,
        "classType": data.get("classType"),
        "calendarLink": event.get("htmlLink"),
        **_invitation(event, email, not_invited),
    }
    price = data.get("classPrice")
    if price is not None:
        fields["classPrice"] = price
    activity = {
        "userId": data.get("bookedById"),
        "classId": booking_id,
        "taskId": None,
        "rol": event_shape.HOST_TYPE,
        "completed": False,
    }
    result = bookings.complete_scheduling(
        booking_id,
        fields=fields,
        access_code=access_code,
        activity_id=event_shape.activity_id_for(booking_id),
        activity=activity,
    )
    if result == bookings.CANCELLED:
        # Cancelled while this delivery made the event: take the event away again.
        cancellation.cancel(
            booking_id, data.get("cancellationReason") or "cancelled", None, owner=owner
        )
        raise _Cancelled
    mirror.note_event(event)
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
        message = outcome.WAITING_MESSAGES.get(
            error.code, f"Retried automatically: {error.message}"
        )
        if isinstance(error, ConfigError):
            severity = log.error
            message = f"classcal is misconfigured and waits for a fix: {error.message}"
    outcome.release_quietly(booking_id, owner, state, error.code, message, fields)
    error.logged = True
    severity(
        f"scheduling stopped: {error.message}",
        extra={
            **context,
            "outcome": state,
            "reason": error.code,
            "calendar_calls": dict(calls),
        },
    )
