"""What the admin's console shows and does, as plain values.

The console reads: the Google connection (checked with Google at most once a minute
per instance), the calendar link (the watch channel, the last notification, the last
sync and the mirror's age, from ``calendarChannels`` and ``calendarSync``) and the
bookings that need a person. It does one thing: "Retry now" on a booking, through
``scheduling.schedule_booking``, the same idempotent path payments and maintenance use,
so pressing it twice (or with maintenance running) can never make a second event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shared.core.errors import BookingBusy, ClasscalError, PermanentError
from shared.core.logs import get_logger
from shared.domain import connection, scheduling
from shared.google import calendar
from shared.stores import attention, sync_state

log = get_logger(__name__)

PAGE_SIZE = 20

# The console's words for each reason a booking needs a person.
REASONS = {
    "admin_reconnect_required": "Waiting for Google to be reconnected",
    "google_unavailable": "Google Calendar was unavailable",
    "conference_pending": "The Meet link is still being created",
    "conference_failed": "Google could not create the Meet link",
    "event_deleted": "Its Calendar event was deleted",
    "slot_taken": "Its time was already taken",
    "store_unavailable": "The database did not answer",
    "unexpected_error": "An unexpected error",
    "invalid_booking": "The booking's data is incomplete",
    "bad_times": "The booking's times are wrong",
}


@dataclass(frozen=True)
class CalendarLink:
    channel_id: str | None
    channel_state: str | None
    channel_expires: datetime | None
    last_notification: datetime | None
    last_sync: datetime | None
    mirror_rebuilt: datetime | None

    @property
    def mirror_age_minutes(self) -> int | None:
        if self.mirror_rebuilt is None and self.last_sync is None:
            return None
        newest = max(t for t in (self.mirror_rebuilt, self.last_sync) if t is not None)
        return max(0, int((datetime.now(UTC) - newest).total_seconds() // 60))


@dataclass(frozen=True)
class Console:
    connection: connection.ConnectionStatus
    calendar: CalendarLink
    problems: attention.Page


def calendar_link() -> CalendarLink:
    calendar_id = calendar.calendar_id()
    channels = sync_state.live_channels(calendar_id)
    channel = channels[-1] if channels else None
    synced = sync_state.sync_status(calendar_id)
    last_sync = synced.get("syncedAt")
    rebuilt = synced.get("mirrorRebuiltAt") or synced.get("fullSyncAt")
    return CalendarLink(
        channel_id=channel.id if channel else None,
        channel_state=channel.state if channel else None,
        channel_expires=channel.expiration if channel else None,
        last_notification=max(
            (c.last_notification_at for c in channels if c.last_notification_at), default=None
        ),
        last_sync=last_sync if isinstance(last_sync, datetime) else None,
        mirror_rebuilt=rebuilt if isinstance(rebuilt, datetime) else None,
    )


def load(after: str | None = None) -> Console:
    return Console(
        connection=connection.checked_status(),
        calendar=calendar_link(),
        problems=attention.problems(PAGE_SIZE, after),
    )


@dataclass(frozen=True)
class Retried:
    outcome: str  # scheduled | already_scheduled | cancelled | slot_taken | busy | failed | gone
    reason: str | None = None


def retry(booking_id: str) -> Retried:
    """Try to schedule the booking again now, exactly as maintenance would."""
    if attention.get_problem(booking_id) is None:
        return Retried("gone")
    try:
        done = scheduling.schedule_booking(booking_id)
    except BookingBusy:
        return Retried("busy")
    except PermanentError as error:
        return Retried("failed", error.code)
    except ClasscalError as error:
        # Transient: recorded on the booking as waiting; maintenance tries again too.
        return Retried("waiting", error.code)
    log.info(
        "booking retried from the console",
        extra={"booking_id": booking_id, "outcome": done.outcome},
    )
    return Retried(done.outcome)
