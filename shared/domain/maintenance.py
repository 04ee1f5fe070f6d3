"""Hourly upkeep of the calendar link: one live watch channel, and nothing forgotten.

One run, in order, each step independent of the others' failures:

1. channel upkeep: keep exactly one live watch channel on ``CALENDAR_ID`` pointed at
   ``CALENDAR_WEBHOOK_URL``. A new channel is created when none is live, when the live
   one expires within ``CHANNEL_RENEW_BEFORE_HOURS``, or when the webhook URL changed;
   only then are older channels stopped (so there is never a gap without one).
2. catch-up sync: an incremental sync, so a change whose notification was lost is
   applied within the hour and the busy-time mirror stays fresh; once a day a full one,
   which moves the mirror's horizon forward (see ``shared.domain.mirror``).
3. reconcile: bookings with an approved payment but no event after
   ``RECONCILE_GRACE_MINUTES`` (waiting on a transient reason, or left so by a message
   that went to the dead-letter topic) are scheduled again through
   ``shared.domain.scheduling.schedule_booking``, the payment function's own idempotent path;
   cancelled bookings whose event removal still waits are finished through
   ``shared.domain.cancellation.cancel_booking``; a reschedule the platform asked for,
   accepted but whose event was never patched (its message dead-lettered), is finished
   through ``shared.domain.booking_changes.reschedule``.
4. event check: scheduled bookings' events are read (a slice per run, resumed by a
   cursor); a deleted event cancels the booking as the webhook would, a missing one
   (404) flags it for a person.
5. guests: group classes whose guest changes are not yet made in Google Calendar (a
   lost or dead-lettered nudge) are brought in step by
   ``shared.domain.guest_invitations.sync_guests``, the private function's own path.
6. completion: scheduled classes that ended more than ``COMPLETE_AFTER_MINUTES`` ago are
   marked ``completed``, with ``completed: true`` on every activity (host and guests),
   each exactly once (``shared.stores.completion``); cancelled ones never.

The run is bounded (bookings per run, a time budget) to fit one function timeout; what
is left is picked up by the next run. One summary line reports the counts.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core import signing
from shared.core.config import get_config
from shared.core.errors import (
    AdminReconnectRequired,
    ClasscalError,
    ConfigError,
    NotFound,
    TransientError,
)
from shared.core.logs import get_logger
from shared.domain import booking_changes as rescheduling
from shared.domain import cancellation, sync
from shared.google import calendar
from shared.stores import booking_changes, booking_sync, completion, oauth_states, sync_state

log = get_logger(__name__)

MAX_RESCHEDULES = 20  # each may wait several seconds on a Meet conference
MAX_EVENT_CHECKS = 100  # one events.get each
MAX_COMPLETIONS = 200  # one small transaction each, no Google call
TIME_BUDGET_SECONDS = 240.0  # the function's timeout is 540 s; leave room for the rest
UPKEEP_LOCK_SECONDS = 120.0
# A channel whose watch call never completed (the instance died) is retired after this.
PENDING_CHANNEL_TIMEOUT = timedelta(minutes=10)
MIRROR_REBUILD_EVERY = timedelta(hours=24)


@dataclass
class MaintenanceResult:
    channels_created: int = 0
    channels_renewed: int = 0
    channels_stopped: int = 0
    channel_id: str | None = None
    channel_expiration: datetime | None = None
    changes_applied: int = 0
    mirror_rebuilt: bool = False
    bookings_reconciled: int = 0
    cancellations_finished: int = 0
    reschedules_finished: int = 0
    still_failing: Counter[str] = field(default_factory=Counter)
    events_checked: int = 0
    events_missing: int = 0
    bookings_cancelled: int = 0
    guest_classes_synced: int = 0
    classes_completed: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    retry: ClasscalError | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "channels_created": self.channels_created,
            "channels_renewed": self.channels_renewed,
            "channels_stopped": self.channels_stopped,
            "channel_id": self.channel_id,
            "channel_expiration": self.channel_expiration.isoformat()
            if self.channel_expiration
            else None,
            "changes_applied": self.changes_applied,
            "mirror_rebuilt": self.mirror_rebuilt,
            "bookings_reconciled": self.bookings_reconciled,
            "cancellations_finished": self.cancellations_finished,
            "reschedules_finished": self.reschedules_finished,
            "bookings_still_failing": sum(self.still_failing.values()),
            "still_failing_reasons": dict(self.still_failing),
            "events_checked": self.events_checked,
            "events_missing": self.events_missing,
            "bookings_cancelled": self.bookings_cancelled,
            "guest_classes_synced": self.guest_classes_synced,
            "classes_completed": self.classes_completed,
            "step_errors": dict(self.errors),
        }


def run() -> dict[str, Any]:
    """One maintenance run; returns the summary (logged by the caller as one line).

    Raises the channel step's error when it is transient (or a ConfigError), after the
    other steps ran, so Pub/Sub redelivers: without a live channel changes made in
    Google go unnoticed until the next run.
    """
    result = MaintenanceResult()
    deadline = time.monotonic() + TIME_BUDGET_SECONDS
    _step(result, "channel", lambda: ensure_channel(result))
    _step(result, "sync", lambda: _catch_up(result))
    _step(result, "reconcile", lambda: reconcile(result, deadline))
    _step(result, "event_check", lambda: check_events(result, deadline))
    _step(result, "guests", lambda: sync_guests(result, deadline))
    _step(result, "complete", lambda: complete_classes(result, deadline))
    summary = result.summary()
    if result.retry is not None:
        log.error(
            "calendar maintenance incomplete; will retry",
            extra={"outcome": "retry", "reason": result.retry.code, **summary},
        )
        raise result.retry
    return summary


def _step(result: MaintenanceResult, name: str, work: Any) -> None:
    try:
        work()
    except ClasscalError as error:
        result.errors[name] = error.code
        log.warning(
            f"maintenance step {name} failed: {error.message}",
            extra={"step": name, "reason": error.code},
        )
        if name == "channel" and isinstance(error, TransientError | ConfigError):
            result.retry = error
        if isinstance(error, AdminReconnectRequired):
            # What /healthz and the console's anonymous page answer from.
            oauth_states.note_token_refused()
    except Exception:
        # A bug met in one step (a booking no code path expected) must not stop the others,
        # nor make Pub/Sub redeliver the tick forever: log it loudly and carry on.
        result.errors[name] = "unexpected_error"
        log.exception(f"maintenance step {name} failed unexpectedly", extra={"step": name})


# --- 1. the watch channel ---


def ensure_channel(result: MaintenanceResult) -> None:
    config = get_config()
    address = config.require("CALENDAR_WEBHOOK_URL")
    calendar_id = config.calendar_id
    owner = secrets.token_hex(8)
    if not sync_state.claim_channel_upkeep(calendar_id, owner, UPKEEP_LOCK_SECONDS):
        log.info("another maintenance run is renewing the channel", extra={"step": "channel"})
        return
    try:
        _upkeep(result, calendar_id, address)
    finally:
        sync_state.release_channel_upkeep(calendar_id, owner)


def _upkeep(result: MaintenanceResult, calendar_id: str, address: str) -> None:
    config = get_config()
    now = datetime.now(UTC)
    channels = sync_state.live_channels(calendar_id)
    for channel in channels:
        created = channel.created_at
        if (
            channel.state == sync_state.PENDING
            and created
            and created < now - PENDING_CHANNEL_TIMEOUT
        ):
            sync_state.set_channel_state(
                channel.id, sync_state.ABANDONED, reason="watch_never_completed"
            )
    active = [c for c in channels if c.state == sync_state.ACTIVE]
    renew_by = now + timedelta(hours=config.channel_renew_before_hours)
    current = max(
        (c for c in active if c.address == address and c.expiration and c.expiration > renew_by),
        key=lambda c: c.expiration or now,
        default=None,
    )
    if current is None:
        current = create_channel(calendar_id, address)
        if active:
            result.channels_renewed += 1
        else:
            result.channels_created += 1
    result.channel_id = current.id
    result.channel_expiration = current.expiration
    # Only now that a live channel exists: stop the older ones (and any duplicate).
    for channel in active:
        if channel.id != current.id:
            stop_channel(channel)
            result.channels_stopped += 1


def create_channel(calendar_id: str, address: str) -> sync_state.Channel:
    """Watch the calendar with a fresh random channel id and secret token."""
    config = get_config()
    channel_id = f"classcal-{secrets.token_hex(16)}"
    token = secrets.token_urlsafe(32)
    sync_state.create_pending_channel(channel_id, token, calendar_id, address)
    expiration = datetime.now(UTC) + timedelta(hours=config.channel_ttl_hours)
    try:
        response = calendar.watch_events(
            {
                "id": channel_id,
                "type": "web_hook",
                "address": address,
                "token": token,
                "expiration": str(int(expiration.timestamp() * 1000)),
            }
        )
    except ClasscalError as error:
        sync_state.set_channel_state(channel_id, sync_state.ABANDONED, reason=error.code)
        raise
    # Google may grant a shorter life than asked: trust its answer.
    granted = _from_millis(response.get("expiration")) or expiration
    resource_id = str(response.get("resourceId") or "")
    sync_state.activate_channel(channel_id, resource_id, granted)
    log.info(
        "watch channel created",
        extra={"channel_id": channel_id, "expiration": granted.isoformat(), "address": address},
    )
    return sync_state.Channel(
        id=channel_id,
        token_digest=signing.digest(token),
        calendar_id=calendar_id,
        address=address,
        state=sync_state.ACTIVE,
        resource_id=resource_id,
        expiration=granted,
    )


def stop_channel(channel: sync_state.Channel) -> None:
    if channel.resource_id:
        # A 404: already expired or stopped at Google, which is the goal anyway.
        with contextlib.suppress(NotFound):
            calendar.stop_channel(channel.id, channel.resource_id)
    sync_state.set_channel_state(channel.id, sync_state.STOPPED)
    log.info("watch channel stopped", extra={"channel_id": channel.id})


def _from_millis(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError, OverflowError):
        return None


# --- 2. catch-up sync ---


def _catch_up(result: MaintenanceResult) -> None:
    """An incremental sync every run (the mirror stays fresh without notifications), and
    a full one when the mirror was last rebuilt over a day ago, so that the horizon moves
    forward: recurring instances and far-off events that enter it are picked up."""
    rebuilt = sync_state.sync_status(calendar.calendar_id()).get("mirrorRebuiltAt")
    stale = not isinstance(rebuilt, datetime) or datetime.now(UTC) - rebuilt > MIRROR_REBUILD_EVERY
    outcome = sync.sync_calendar(full=stale)
    result.changes_applied += outcome.applied
    result.mirror_rebuilt = outcome.full_resync


# --- 3. reconcile ---


def reconcile(result: MaintenanceResult, deadline: float) -> None:
    """Finish what Pub/Sub gave up on, through the payment function's own code paths:
    schedule paid bookings that have no event, remove the events of cancelled ones."""
    from shared.domain import scheduling

    grace = timedelta(minutes=get_config().reconcile_grace_minutes)
    for booking_id in booking_sync.bookings_to_reconcile(grace=grace, limit=MAX_RESCHEDULES):
        if time.monotonic() > deadline:
            result.still_failing["time_budget"] += 1
            continue
        try:
            outcome = scheduling.schedule_booking(booking_id)
        except ClasscalError as error:
            _still_failing(result, booking_id, error)
            continue
        except Exception:
            _failed_unexpectedly(result, booking_id)
            continue
        if outcome.outcome == "scheduled":
            result.bookings_reconciled += 1
            log.info("booking scheduled by maintenance", extra={"booking_id": booking_id})
    for booking_id, reason in booking_sync.cancellations_to_finish(
        grace=grace, limit=MAX_RESCHEDULES
    ):
        if time.monotonic() > deadline:
            result.still_failing["time_budget"] += 1
            continue
        try:
            cancellation.cancel_booking(booking_id, reason=reason)
        except ClasscalError as error:
            _still_failing(result, booking_id, error)
            continue
        except Exception:
            _failed_unexpectedly(result, booking_id)
            continue
        result.cancellations_finished += 1
        log.info("cancellation finished by maintenance", extra={"booking_id": booking_id})
    for item in booking_changes.reschedules_to_finish(grace=grace, limit=MAX_RESCHEDULES):
        if time.monotonic() > deadline:
            result.still_failing["time_budget"] += 1
            continue
        try:
            moved = rescheduling.reschedule(
                item.booking_id, start=item.start, end=item.end, requested_at=item.requested_at
            )
        except ClasscalError as error:
            _still_failing(result, item.booking_id, error)
            continue
        except Exception:
            _failed_unexpectedly(result, item.booking_id)
            continue
        if moved.get("outcome") == "rescheduled":
            result.reschedules_finished += 1


def _still_failing(result: MaintenanceResult, booking_id: str, error: ClasscalError) -> None:
    result.still_failing[error.code] += 1
    log.warning(
        f"booking still not in step: {error.message}",
        extra={"booking_id": booking_id, "reason": error.code},
    )


def _failed_unexpectedly(result: MaintenanceResult, booking_id: str) -> None:
    # One booking's bug must not keep maintenance from the others (it is retried next run).
    result.still_failing["unexpected_error"] += 1
    log.exception(
        "booking could not be brought in step (a bug)",
        extra={"booking_id": booking_id, "reason": "unexpected_error"},
    )


def check_events(result: MaintenanceResult, deadline: float) -> None:
    """Check a slice of scheduled bookings' events; a full cycle spans several runs."""
    calendar_id = calendar.calendar_id()
    cursor = sync_state.reconcile_cursor(calendar_id)
    # A short page means the end was reached: the next run starts over.
    batch, next_cursor = booking_sync.scheduled_bookings_to_check(
        after=cursor, limit=MAX_EVENT_CHECKS
    )
    checked_to = cursor
    for item in batch:
        if time.monotonic() > deadline:
            next_cursor = checked_to
            break
        result.events_checked += 1
        try:
            event = calendar.get_event(item.event_id)
        except NotFound:
            if booking_sync.flag_missing_event(item.booking_id, item.event_id, "event_not_found"):
                result.events_missing += 1
                log.error(
                    "a scheduled booking's Calendar event does not exist",
                    extra={"booking_id": item.booking_id, "event_id": item.event_id},
                )
        else:
            # A deleted event whose notification was lost: the same change the webhook makes.
            if event.get("status") == "cancelled" and sync.apply_event(event) == "cancelled":
                result.bookings_cancelled += 1
        checked_to = item.cursor
    sync_state.set_reconcile_cursor(calendar_id, next_cursor)


# --- 5. guests of group classes ---


def sync_guests(result: MaintenanceResult, deadline: float) -> None:
    """Make the guest changes a lost nudge left, through the private function's path."""
    from shared.domain import guest_invitations
    from shared.stores import group_classes

    for booking_id in group_classes.bookings_with_pending_guests(limit=MAX_RESCHEDULES):
        if time.monotonic() > deadline:
            result.still_failing["time_budget"] += 1
            continue
        try:
            outcome = guest_invitations.sync_guests(booking_id)
        except ClasscalError as error:
            _still_failing(result, booking_id, error)
            continue
        except Exception:
            _failed_unexpectedly(result, booking_id)
            continue
        if outcome.get("outcome") == "synced":
            result.guest_classes_synced += 1


# --- 6. completion ---


def complete_classes(result: MaintenanceResult, deadline: float) -> None:
    """Mark the classes that took place ``completed`` (the platform reads it)."""
    cutoff = datetime.now(UTC) - timedelta(minutes=get_config().complete_after_minutes)
    for booking_id in completion.classes_to_complete(ended_before=cutoff, limit=MAX_COMPLETIONS):
        if time.monotonic() > deadline:
            break  # the next run carries on
        marked = completion.complete_class(booking_id, ended_before=cutoff)
        if marked is not None:
            result.classes_completed += 1
            log.info(
                "class completed",
                extra={"booking_id": booking_id, "activities_completed": marked},
            )
