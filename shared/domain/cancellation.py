"""Cancelling a class: status ``cancelled``, its Calendar event deleted, its activities marked
(the host's, and every guest's of a group class).

``cancel_booking`` is the one code path that cancels (a refund, a cancellation in Google
Calendar, maintenance finishing one). It is safe to run any number of times,
concurrently, and after a crash at any point: the booking's lease keeps two deliveries
apart, and an event already deleted counts as deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from shared.core.config import get_config
from shared.core.errors import ConfigError, Gone, NotFound, TransientError
from shared.core.logs import get_logger
from shared.domain import mirror
from shared.domain.event_shape import activity_id_for, event_id_for, guest_activity_ids
from shared.domain.outcome import WAITING_MESSAGES, Outcome, release_quietly
from shared.google import calendar
from shared.stores import bookings, cancellations

log = get_logger(__name__)


def cancel_booking(
    booking_id: str, *, reason: str, payment_fields: Mapping[str, Any] | None = None
) -> Outcome:
    """Cancel the booking: status ``cancelled``, its Calendar event deleted, its activity marked.

    Idempotent: a second call, or an event already deleted in Google, is success. A
    booking that never reached Calendar gets its status and payment recorded and no
    Calendar call. Raises TransientError (after recording why) when the event could
    not be deleted yet; BookingBusy while a scheduling delivery holds the booking.
    """
    with calendar.count_calls() as calls:
        outcome = cancel(booking_id, reason, payment_fields)
    return Outcome(
        booking_id, outcome.outcome, outcome.event_id, outcome.preference_id, dict(calls)
    )


def cancel(
    booking_id: str,
    reason: str,
    payment_fields: Mapping[str, Any] | None,
    *,
    owner: str | None = None,
) -> Outcome:
    """The cancellation itself, for callers that already count Calendar calls (or hold
    the booking's lease as ``owner``)."""
    config = get_config()
    owner = owner or uuid.uuid4().hex
    claim = cancellations.claim_for_cancellation(
        booking_id,
        owner=owner,
        lease_seconds=config.scheduling_lease_seconds,
        reason=reason,
        payment_fields=dict(payment_fields or {}),
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
            release_quietly(booking_id, owner, bookings.WAITING, error.code, message)
            log.warning(
                f"cancellation waits: {error.message}",
                extra={**context, "outcome": bookings.WAITING, "reason": error.code},
            )
            error.logged = True
            raise
        mirror.forget_event(event_id)  # gone from Google: free on the page at once too
    cancellations.complete_cancellation(
        booking_id,
        owner=owner,
        activity_id=activity_id_for(booking_id),
        guest_activity_ids=guest_activity_ids(booking_id, data),
    )
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
