"""What the admin's console shows and does, as plain values.

The console reads: the Google connection (checked with Google at most once a minute
per instance), the calendar link (the watch channel, the last notification, the last
sync and the mirror's age, from ``calendarChannels`` and ``calendarSync``) and the
bookings that need a person, the refunds made and the group classes whose guests are not
yet invited. It does two things, each through the same idempotent path maintenance
uses, so pressing it twice (or with maintenance running) can never duplicate anything:
"Retry now" on a booking (``scheduling.schedule_booking``: never a second event) and
"Invite now" on a class's guests (``guest_invitations.sync_guests``: each guest invited
once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.core import ids
from shared.core.errors import BookingBusy, ClasscalError, PermanentError
from shared.core.logs import get_logger
from shared.domain import connection, group_classes, guest_invitations, scheduling
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
    "slot_taken_refund_refused": "Its time was taken and MercadoPago refused the refund",
}

# The console's words for each refund and for why guests were not invited yet.
REFUNDS = {
    "refunded": "Refunded in MercadoPago; its class was cancelled",
    "slot_taken_refunded": "Its time was taken; classcal refunded the payment",
}
GUEST_REASONS = {
    "admin_reconnect_required": "Waiting for Google to be reconnected",
    "google_unavailable": "Google Calendar was unavailable",
    "unexpected_error": "An unexpected error",
    "guests_changing": "The guests kept changing",
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
    problems: attention.Page[attention.Problem]
    refunds: attention.Page[attention.Refund]
    guests: attention.Page[attention.PendingGuests]


@dataclass(frozen=True)
class Cursors:
    """Where each list continues: a booking id from the previous page, or None."""

    problems: str | None = None
    refunds: str | None = None
    guests: str | None = None


def guest_counts(pending: attention.PendingGuests) -> tuple[int, int]:
    """(guests to invite, guests to take out of the event)."""
    states = pending.guest_states
    return states.count(group_classes.WAITING), states.count(group_classes.REMOVING)


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


def load(cursors: Cursors | None = None) -> Console:
    cursors = cursors or Cursors()
    return Console(
        connection=connection.checked_status(),
        calendar=calendar_link(),
        problems=attention.problems(PAGE_SIZE, cursors.problems),
        refunds=attention.refunds(PAGE_SIZE, cursors.refunds),
        guests=attention.pending_guests(PAGE_SIZE, cursors.guests),
    )


@dataclass(frozen=True)
class Retried:
    outcome: str  # scheduled | already_scheduled | cancelled | slot_taken | busy | failed | gone
    reason: str | None = None


def _act(what: str, booking_id: str, action: Callable[[], str]) -> Retried:
    """Run a console action; its outcome, or why it could not be done now. A transient
    failure is recorded where maintenance finds it, and maintenance tries again too."""
    try:
        outcome = action()
    except BookingBusy:
        return Retried("busy")
    except PermanentError as error:
        return Retried("failed", error.code)
    except ClasscalError as error:
        return Retried("waiting", error.code)
    log.info(what, extra={"booking_id": booking_id, "outcome": outcome})
    return Retried(outcome)


def retry(booking_id: str) -> Retried:
    """Try to schedule the booking again now, exactly as maintenance would."""
    if attention.get_problem(booking_id) is None:
        return Retried("gone")
    return _act(
        "booking retried from the console",
        booking_id,
        lambda: scheduling.schedule_booking(booking_id).outcome,
    )


def invite_guests(booking_id: str) -> Retried:
    """Make the class's guest changes in Google Calendar now, exactly as maintenance
    would: ``invited``, ``idle`` (nothing waited), ``busy``, ``waiting`` or ``gone``."""
    if not ids.is_document_id(booking_id):
        return Retried("gone")

    def invite() -> str:
        done = guest_invitations.sync_guests(booking_id)
        return {"synced": "invited", "missing": "gone"}.get(done["outcome"], done["outcome"])

    return _act("guests invited from the console", booking_id, invite)
