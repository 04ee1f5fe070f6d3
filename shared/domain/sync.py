"""Changes made in Google Calendar flow back to bookings: the sync.

Google tells a watch channel only *that* something changed; what changed is learnt by
an incremental ``events.list`` with the calendar's stored sync token. So a verified
``exists`` notification (``shared.domain.notifications``, in the public webhook) is
handed over Pub/Sub to the private ``calendar_sync`` function, which runs
:func:`sync_calendar` with the school's token: it lists every page of changes,
applies those of classcal's events to their bookings, and stores the next token. An
expired token (410) falls back to a full list of the booking window.

Exactly-once: only the holder of the calendar's sync lease lists and applies changes
(see ``shared.stores.sync_state``); notifications arriving meanwhile only mark the calendar
dirty, and the holder runs one more pass before letting go. Applying a change is
idempotent on top of that: a booking is written only when it differs from the event,
and never with an event version older than one already applied.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core import ids, retry
from shared.core.errors import Gone, PermanentError
from shared.core.logs import get_logger
from shared.domain import event_shape, mirror
from shared.google import calendar
from shared.stores import booking_sync, sync_state

log = get_logger(__name__)

SYNC_LEASE_SECONDS = 120.0
# A storm of notifications must not keep one request syncing forever: after this many
# passes the lease is given back still dirty, and the next notification carries on.
MAX_PASSES = 5
PAGE_SIZE = 2500
# Google may answer short or even empty pages while more follow, so what bounds a list
# is the number of events; the page bound only stops a list that would never end.
MAX_EVENTS = 100_000
MAX_PAGES = 1_000
# A full resync lists every event that ends after this long ago (a class that ended a
# day ago is no longer worth correcting), with no end: a list bounded by timeMax (or
# ordered, or searched) ends without the nextSyncToken the next incremental sync needs.
RESYNC_PAST = timedelta(days=1)

# How many times a notification that came too soon after a pass waits and asks again.
MAX_WAITS = 4


@dataclass
class SyncResult:
    coalesced: bool = False
    passes: int = 0
    full_resync: bool = False
    events_listed: int = 0
    mirrored: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def applied(self) -> int:
        return self.outcomes["cancelled"] + self.outcomes["updated"]

    def log_fields(self) -> dict[str, Any]:
        return {
            "coalesced": self.coalesced,
            "passes": self.passes,
            "full_resync": self.full_resync,
            "events_listed": self.events_listed,
            "mirror_changes": self.mirrored,
            "changes_applied": self.applied,
            "event_outcomes": dict(self.outcomes),
        }


def _lease(calendar_id: str, min_interval: float) -> sync_state.Lease | None:
    """The sync lease, waiting out the minimum interval since the last pass if need be."""
    asked = sync_state.request_sync(calendar_id, SYNC_LEASE_SECONDS, min_interval=min_interval)
    for _ in range(MAX_WAITS):
        if not isinstance(asked, sync_state.TooSoon):
            return asked
        retry.sleep(min(asked.wait_seconds, min_interval))
        asked = sync_state.request_sync(
            calendar_id, SYNC_LEASE_SECONDS, min_interval=min_interval, mark=False
        )
    # Still too soon after waiting several times: passes keep starting, and the calendar
    # stays dirty, so one of them (or the next notification) lists this change.
    return asked if not isinstance(asked, sync_state.TooSoon) else None


def sync_calendar(*, full: bool = False, min_interval: float = 0.0) -> SyncResult:
    """Bring every booking and the mirror in step with the calendar, unless a running sync
    will do it. ``full``: list everything again (and rebuild the mirror) this time.
    ``min_interval``: start no listing pass sooner than this many seconds after the last
    one (notifications use it; a burst of them is coalesced into one pass)."""
    calendar_id = calendar.calendar_id()
    lease = _lease(calendar_id, min_interval)
    result = SyncResult()
    if lease is None:
        result.coalesced = True
        return result
    try:
        last_pass = 0.0
        for _ in range(MAX_PASSES):
            if result.passes and min_interval > 0:
                # More notifications came during the pass: wait out the interval, so that
                # the next pass covers all of them at once.
                retry.sleep(max(0.0, last_pass + min_interval - time.monotonic()))
            last_pass = time.monotonic()
            result.passes += 1
            token = sync_state.start_pass(lease, SYNC_LEASE_SECONDS)
            if full and result.passes == 1:
                token = None
            events, next_token, listed_all = list_changes(token)
            result.full_resync |= listed_all
            result.events_listed += len(events)
            for event in events:
                result.outcomes[apply_event(event)] += 1
            if listed_all:
                result.mirrored = mirror.rebuild()
            else:
                result.mirrored += mirror.apply_changes(events)
            if sync_state.finish_pass(
                lease, next_token, full=listed_all, lease_seconds=SYNC_LEASE_SECONDS
            ):
                return result
        log.warning(
            "calendar still changing after several passes; the next notification continues",
            extra={"calendar_id": calendar_id, "passes": result.passes},
        )
        sync_state.abandon_sync(lease)
        return result
    except sync_state.LeaseLost:
        # Our lease expired and another sync took over: it lists from the stored token,
        # and whatever we applied is idempotent.
        log.warning("sync lease lost to another sync", extra={"calendar_id": calendar_id})
        return result
    except BaseException:
        try:
            sync_state.abandon_sync(lease)
        except Exception:  # the original error matters more; the lease expires anyway
            log.warning("could not release the sync lease", extra={"calendar_id": calendar_id})
        raise


def list_changes(sync_token: str | None) -> tuple[list[dict[str, Any]], str | None, bool]:
    """Every changed event since ``sync_token`` (or the whole window), the next token, full?"""
    if sync_token:
        try:
            events, next_token = _list_all({"syncToken": sync_token})
            return events, next_token, False
        except Gone:
            log.warning("sync token expired: running a full resync of the booking window")
    now = datetime.now(UTC)
    # showDeleted: a class deleted in Google Calendar while the token was lost still
    # cancels its booking; its tombstone may carry nothing but its id.
    window = {"timeMin": (now - RESYNC_PAST).isoformat(), "showDeleted": True}
    events, next_token = _list_all(window)
    if not next_token:
        log.warning("a full list returned no sync token; the next change lists in full again")
    return events, next_token, True


def _list_all(params: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    events: list[dict[str, Any]] = []
    page_token: str | None = None
    for _ in range(MAX_PAGES):
        page = calendar.list_events(
            **params,
            maxResults=PAGE_SIZE,
            **({"pageToken": page_token} if page_token else {}),
        )
        events.extend(page.get("items") or [])  # a page may be short or empty
        page_token = page.get("nextPageToken")
        if not page_token:
            return events, page.get("nextSyncToken")
        if len(events) > MAX_EVENTS:
            break
    raise PermanentError(
        f"more than {MAX_EVENTS} changed events (or {MAX_PAGES} pages) in one list",
        code="sync_too_large",
    )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _sequence(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _booking_id(event: Mapping[str, Any]) -> str | None:
    private = (event.get("extendedProperties") or {}).get("private") or {}
    value = private.get(event_shape.BOOKING_ID_PROPERTY) if isinstance(private, dict) else None
    if ids.is_document_id(value, max_length=200):
        return value
    return None


def apply_event(event: Mapping[str, Any]) -> str:
    """Apply one listed event to its booking; return what happened (for counts and tests)."""
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        return "not_classcal"
    cancelled = event.get("status") == "cancelled"
    booking_id = _booking_id(event)
    if booking_id is None:
        if not cancelled:
            return "not_classcal"
        # A tombstone may carry nothing but its id: find the booking by its event.
        booking_id = booking_sync.booking_id_for_event(event_id)
        if booking_id is None:
            return "not_classcal"
    start = (event.get("start") or {}).get("dateTime")
    end = (event.get("end") or {}).get("dateTime")
    outcome = booking_sync.apply_calendar_change(
        booking_id,
        event_id=event_id,
        cancelled=cancelled,
        start=_parse_time(start),
        end=_parse_time(end),
        meet_link=None if cancelled else event_shape.meet_link(event),
        updated=_parse_time(event.get("updated")),
        sequence=_sequence(event.get("sequence")),
        activity_id=event_shape.activity_id_for(booking_id),
        guest_activity_ids=lambda data: event_shape.guest_activity_ids(booking_id, data),
    )
    if outcome in ("cancelled", "updated"):
        log.info(
            f"booking {outcome} from Google Calendar",
            extra={"booking_id": booking_id, "event_id": event_id, "outcome": outcome},
        )
    return outcome
