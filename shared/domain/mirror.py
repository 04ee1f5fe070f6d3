"""The calendar's busy time, kept in Firestore so that nothing public reads Google.

Every event that blocks time (not cancelled, not transparent), classcal's and everyone
else's, becomes a ``Busy`` interval in ``shared.stores.slots``: start, end, status and,
for classcal's events, the booking id; never a title, an attendee or a link.

- A full sync (the first after the admin connects, after an expired sync token, and
  once a day from maintenance) lists the horizon, recurring events expanded
  (``singleEvents``), from a day ago to ``MIRROR_HORIZON_DAYS`` ahead, and rebuilds it.
  That daily rebuild is how instances of a recurring event that enter the horizon
  later, and events created far ahead, are picked up.
- An incremental sync applies each changed event: a single event replaces its interval,
  a recurring one (its master, or one changed instance) re-lists that series' instances
  in the horizon, a deletion (even a tombstone carrying only its id) removes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.core.config import get_config
from shared.core.errors import ClasscalError, GoogleUnavailable
from shared.core.logs import get_logger
from shared.domain import event_shape
from shared.google import calendar
from shared.stores import busy_time, slots, sync_state

log = get_logger(__name__)

PAGE_SIZE = 2500
# Pages may be short or empty while more follow: events bound a list, pages only a loop.
MAX_EVENTS = 100_000
MAX_PAGES = 1_000
FIELDS = (
    "items(id,status,transparency,start,end,recurringEventId,recurrence,iCalUID,"
    "extendedProperties),nextPageToken"
)


def _zone(name: Any, fallback: ZoneInfo) -> ZoneInfo:
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return fallback


def _instant(when: Any, zone: ZoneInfo) -> datetime:
    """The instant an event's ``start`` or ``end`` stands for; ValueError if it has none."""
    if not isinstance(when, dict):
        raise ValueError("no start or end")
    if isinstance(when.get("dateTime"), str):
        value = datetime.fromisoformat(when["dateTime"].replace("Z", "+00:00"))
        if value.tzinfo is None:  # Google writes offsets, but be lenient with local times
            value = value.replace(tzinfo=_zone(when.get("timeZone"), zone))
        return value
    if isinstance(when.get("date"), str):
        # All-day: midnight in the school's zone. Through UTC and back, so a midnight
        # that a DST change skips becomes the first instant of that day.
        midnight = datetime.combine(date.fromisoformat(when["date"]), datetime.min.time(), zone)
        return midnight.astimezone(UTC).astimezone(zone)
    raise ValueError("neither dateTime nor date")


def busy_interval(event: Mapping[str, Any], zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The time ``event`` blocks, or None if it blocks none; ValueError if malformed."""
    if event.get("status") == "cancelled" or event.get("transparency") == "transparent":
        return None
    start, end = _instant(event.get("start"), zone), _instant(event.get("end"), zone)
    if end < start:
        raise ValueError("ends before it starts")
    return start, end


def busy_of(event: Mapping[str, Any], zone: ZoneInfo) -> busy_time.Busy | None:
    """The event as a mirrored interval; None when it blocks no time or is malformed."""
    key = event.get("id")
    if not isinstance(key, str) or not key or "/" in key or len(key) > 1024:
        return None
    try:
        interval = busy_interval(event, zone)
    except (ValueError, TypeError, OverflowError):
        return None
    if interval is None or interval[1] <= interval[0]:
        return None
    series = event.get("recurringEventId")
    return busy_time.Busy(
        key=key,
        start=interval[0].astimezone(UTC),
        end=interval[1].astimezone(UTC),
        status="tentative" if event.get("status") == "tentative" else "confirmed",
        booking_id=event_shape.booking_id_of(event),
        series_id=series if isinstance(series, str) and series else None,
    )


def _list(params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page_token: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        page = calendar.list_events(
            **params,
            maxResults=PAGE_SIZE,
            fields=FIELDS,
            **({"pageToken": page_token} if page_token else {}),
        )
        items.extend(page.get("items") or [])
        page_token = page.get("nextPageToken")
        if not page_token:
            return items
        if page_token in seen or len(items) > MAX_EVENTS:
            break
        seen.add(page_token)
    raise GoogleUnavailable(
        f"Calendar events.list did not finish within {MAX_EVENTS} events or {MAX_PAGES} pages"
    )


def _window() -> dict[str, str]:
    config = get_config()
    first, last = slots.horizon(datetime.now(UTC), config.mirror_horizon_days)
    return {"timeMin": first.isoformat(), "timeMax": last.isoformat()}


def rebuild() -> int:
    """List the whole horizon and replace the mirror with it; the intervals kept."""
    config = get_config()
    calendar_id = calendar.calendar_id()
    items = _list({**_window(), "singleEvents": True, "showDeleted": False})
    busy = [b for b in (busy_of(e, config.timezone) for e in items) if b is not None]
    first, _ = slots.horizon(datetime.now(UTC), config.mirror_horizon_days)
    busy_time.rebuild(calendar_id, busy, since=first)
    sync_state.record_mirror_rebuilt(calendar_id)
    log.info("calendar mirror rebuilt", extra={"calendar_id": calendar_id, "busy": len(busy)})
    return len(busy)


def _series_instances(master: Mapping[str, Any]) -> list[dict[str, Any]]:
    uid = master.get("iCalUID")
    if not isinstance(uid, str) or not uid:
        return []
    return _list({**_window(), "singleEvents": True, "iCalUID": uid})


def apply_changes(events: Iterable[Mapping[str, Any]]) -> int:
    """Apply an incremental sync's changed events to the mirror; how many were applied."""
    config = get_config()
    calendar_id = calendar.calendar_id()
    applied = 0
    done_series: set[str] = set()
    for event in events:
        key = event.get("id")
        if not isinstance(key, str) or not key or "/" in key or len(key) > 1024:
            continue
        series = event.get("recurringEventId") if event.get("recurringEventId") else None
        is_master = bool(event.get("recurrence"))
        if is_master or series:
            master_id = key if is_master else str(series)
            if master_id in done_series:
                continue
            done_series.add(master_id)
            if event.get("status") == "cancelled" and is_master:
                busy_time.replace(calendar_id, [key], master_id, [])
            else:
                source = event if is_master else {"iCalUID": event.get("iCalUID")}
                instances = _series_instances(source)
                busy = [b for b in (busy_of(i, config.timezone) for i in instances) if b]
                busy_time.replace(calendar_id, [key], master_id, busy)
        elif event.get("status") == "cancelled":
            # A tombstone may carry nothing but its id (and its series may be gone too).
            busy_time.replace(calendar_id, [key], key, [])
        else:
            found = busy_of(event, config.timezone)
            busy_time.replace(calendar_id, [key], None, [found] if found else [])
        applied += 1
    return applied


def note_event(event: Mapping[str, Any]) -> None:
    """Put an event classcal just made into the mirror now, not at its push notification,
    so the busy slots show a class the moment it is scheduled. Best effort: the sync
    applies the same event again (same key), and a failure here only waits for it."""
    found = busy_of(event, get_config().timezone)
    if found is None:
        return
    try:
        busy_time.replace(calendar.calendar_id(), [found.key], None, [found])
    except ClasscalError as error:
        log.info(
            "the new event reaches the mirror with the next sync",
            extra={"reason": error.code, "event_id": found.key},
        )


def forget_event(event_id: str) -> None:
    """Take an event classcal just deleted out of the mirror now (best effort, as above)."""
    try:
        busy_time.replace(calendar.calendar_id(), [event_id], None, [])
    except ClasscalError as error:
        log.info(
            "the deleted event leaves the mirror with the next sync",
            extra={"reason": error.code, "event_id": event_id},
        )
