"""Changes the school's platform asks for once a class is booked: move it, or cancel it.

``reschedule`` moves a scheduled class to a new time when the slot guard finds that
time free: the SAME Calendar event is patched (its id, its Meet link, its attendees and
reminders stay; only ``start`` and ``end`` are sent, with ``SEND_UPDATES``), then the
booking's times follow. It is decided and the booking's claim moved in one transaction
(``shared.stores.booking_changes``), and the booking's lease keeps concurrent deliveries
of the same request from patching twice: a delivery that finds another at work is
retried, and then finds the request done. A refused request changes nothing but the
record of the request and its reason on the booking.

``cancel`` is the refund's cancellation (``shared.domain.cancellation``) without any
payment field: the platform decides about the money.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from shared.core.config import Config, get_config
from shared.core.errors import ClasscalError, ConfigError, Gone, NotFound, PermanentError
from shared.core.logs import get_logger
from shared.domain import cancellation, event_shape, mirror
from shared.domain.outcome import WAITING_MESSAGES
from shared.google import calendar
from shared.stores import booking_changes as store
from shared.stores import slots

log = get_logger(__name__)

EVENT_MISSING = "event_missing"
_NEVER = datetime.min.replace(tzinfo=UTC)


def reschedule(
    booking_id: str, *, start: datetime, end: datetime, requested_at: datetime
) -> dict[str, Any]:
    """Move the class to ``[start, end)`` if it may be moved there; the log line's fields.

    Raises TransientError (after giving the booking back) when Google or Firestore
    cannot be reached, BookingBusy while another delivery works on the booking, and
    BookingNotFound for a booking that does not exist.
    """
    config = get_config()
    owner = uuid.uuid4().hex
    context: dict[str, Any] = {
        "booking_id": booking_id,
        "action": "reschedule",
        "requested_at": requested_at.isoformat(),
    }
    with calendar.count_calls() as calls:
        decision = store.accept_reschedule(
            booking_id,
            start=start,
            end=end,
            requested_at=requested_at,
            owner=owner,
            lease_seconds=config.scheduling_lease_seconds,
            guard=slots.Guard(config.calendar_id, config.hold_minutes)
            if config.slot_guard
            else None,
        )
        if decision.state != store.ACCEPTED:
            return _not_moved(decision, context)
        event_id = str(decision.data["googleEventId"])
        try:
            event = _move_event(event_id, start, end, config, resumed=decision.resumed)
        except ClasscalError as error:
            _stopped(booking_id, owner, requested_at, error, context)
            if isinstance(error, PermanentError | NotFound | Gone):
                return {
                    **context,
                    "outcome": "reschedule_failed",
                    "reason": _code(error),
                    "calendar_calls": dict(calls),
                }
            raise
        except Exception:
            store.stop_reschedule(
                booking_id,
                owner=owner,
                requested_at=requested_at,
                reason="unexpected_error",
                message="An unexpected error stopped the move; it is retried automatically.",
                permanent=False,
            )
            raise
        fields: dict[str, Any] = {
            "startTime": event_shape.event_time(event, "start", start),
            "endTime": event_shape.event_time(event, "end", end),
        }
        link = event_shape.meet_link(event)
        if link:
            fields["htmlLink"] = link
        store.finish_reschedule(booking_id, owner=owner, requested_at=requested_at, fields=fields)
    log.info(
        "class rescheduled",
        extra={
            **context,
            "outcome": "rescheduled",
            "calendar_event_id": event_id,
            "start": fields["startTime"].isoformat(),
            "end": fields["endTime"].isoformat(),
            "calendar_calls": dict(calls),
        },
    )
    return {
        **context,
        "outcome": "rescheduled",
        "calendar_event_id": event_id,
        "calendar_calls": dict(calls),
    }


def _move_event(
    event_id: str, start: datetime, end: datetime, config: Config, *, resumed: bool
) -> dict[str, Any]:
    """Patch the event's times only. A request an earlier delivery accepted may have been
    patched already (it died before recording it): then the event is read, not patched."""
    event: dict[str, Any] | None = None
    if resumed:
        event = calendar.get_event(event_id)
        if (
            event_shape.event_time(event, "start", _NEVER) != start
            or event_shape.event_time(event, "end", _NEVER) != end
        ) and event.get("status") != "cancelled":
            event = None
    if event is None:
        event = calendar.patch_event(
            event_id,
            event_shape.event_times(start, end, config),
            send_updates=config.send_updates,
        )
    if event.get("status") == "cancelled":
        # Google lets a deleted event's times be patched; the class is still gone.
        raise Gone(f"Calendar event {event_id} was deleted", code=EVENT_MISSING)
    mirror.note_event(event)  # the old time is free on the page (and to the guard) at once
    return event


def _code(error: ClasscalError) -> str:
    return EVENT_MISSING if isinstance(error, NotFound | Gone) else error.code


def _stopped(
    booking_id: str,
    owner: str,
    requested_at: datetime,
    error: ClasscalError,
    context: dict[str, Any],
) -> None:
    permanent = isinstance(error, PermanentError | NotFound | Gone)
    if isinstance(error, NotFound | Gone):
        message = (
            "The class's Calendar event is gone (deleted in Google Calendar?); the class "
            "was not moved."
        )
    elif permanent:
        message = f"Google refused the move: {error.message}"
    elif isinstance(error, ConfigError):
        message = f"classcal is misconfigured and waits for a fix: {error.message}"
    else:
        message = "Moving the class waits: " + WAITING_MESSAGES.get(
            error.code, f"retried automatically ({error.message})"
        )
    store.stop_reschedule(
        booking_id,
        owner=owner,
        requested_at=requested_at,
        reason=_code(error),
        message=message,
        permanent=permanent,
    )
    severity = log.error if permanent or isinstance(error, ConfigError) else log.warning
    severity(
        f"reschedule stopped: {error.message}",
        extra={
            **context,
            "outcome": "reschedule_failed" if permanent else "waiting",
            "reason": _code(error),
        },
    )


def _not_moved(decision: store.Decision, context: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {**context, "outcome": f"reschedule_{decision.state}"}
    if decision.state == store.REFUSED:
        fields["reason"] = decision.reason
        if decision.taken is not None:
            fields["clash"] = decision.taken.what
        log.warning(f"reschedule refused: {decision.message}", extra=fields)
    elif decision.state == "stale":
        log.info("reschedule ignored: the platform sent a later request", extra=fields)
    else:
        log.info(f"reschedule {decision.state}: nothing to change", extra=fields)
    return fields


def cancel(booking_id: str, *, note: str) -> dict[str, Any]:
    """Cancel the class as a refund does (event deleted with SEND_UPDATES, the booking
    and its activity marked), writing no payment field; the platform's reason is kept."""
    outcome = cancellation.cancel_booking(booking_id, reason=store.PLATFORM_CANCEL)
    store.record_cancellation_note(booking_id, note)
    return {**outcome.log_fields(), "action": "cancel"}
