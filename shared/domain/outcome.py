"""What one scheduling or cancellation did, and the words a booking shows while it waits.

Shared by ``shared.domain.scheduling`` and ``shared.domain.cancellation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.core.errors import (
    AdminReconnectRequired,
    CalendarUsageLimited,
    ClasscalError,
    ConferencePending,
    GoogleUnavailable,
    StoreUnavailable,
)
from shared.core.logs import get_logger
from shared.stores import bookings

log = get_logger(__name__)

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
    CalendarUsageLimited.code: (
        "Google Calendar's usage limits keep the school calendar read-only for now (often "
        "for hours, after many events were created); scheduling is retried automatically."
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


def release_quietly(
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
