"""The school's busy slots for the public booking page, from Firestore only.

A busy slot is time the calendar's mirror says is taken (``shared.domain.mirror``:
every event that blocks time, classcal's and everyone else's), a paid booking being
scheduled, or a checkout the platform opened less than ``HOLD_MINUTES`` ago (a hold,
``"status": "tentative"``). Only its start, end and status leave this module.

No Google call and no secret: each instance reads the whole horizon (the day documents,
the live holds and the sync status) at most once per ``LIST_CACHE_TTL_SECONDS`` however
the window is chosen, and cuts every window from it in memory, so no query string can
multiply reads. Times come out in the school's zone (``CALENDAR_TIMEZONE``).

Freshness: every answer says when the mirror was last synced; when that is older than
``MIRROR_MAX_AGE_MINUTES`` the answer is marked stale (and a WARNING is logged once per
read). Before the first sync ever there is nothing to serve: MirrorNotReady (503).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.core import cache, encoding
from shared.core.config import Config, get_config
from shared.core.errors import InvalidParameter, TransientError
from shared.core.logs import get_logger
from shared.stores import bookings, busy_time, slots, sync_state

log = get_logger(__name__)

MAX_WINDOW = timedelta(days=90)
MAX_PARAMETER_LENGTH = 64  # "2025-03-10T10:00:00.123456789+05:30" is 35
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class MirrorNotReady(TransientError):
    """The calendar was never synced: there are no busy slots to serve yet."""

    code = "mirror_not_ready"


# --- the window -------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    time_min: datetime
    time_max: datetime
    default: bool = False  # neither bound was given: now .. now + LIST_WINDOW_DAYS

    def cache_key(self) -> Hashable:
        if self.default:
            return "default"
        # Instants, not spellings: 10:00-03:00 and 13:00Z are the same window.
        return (self.time_min.timestamp(), self.time_max.timestamp())


def parse_timestamp(name: str, raw: str) -> datetime:
    """An RFC 3339 timestamp with offset, or InvalidParameter naming ``name``."""
    if len(raw) > MAX_PARAMETER_LENGTH:
        raise InvalidParameter(name, f"{name} is longer than {MAX_PARAMETER_LENGTH} characters")
    text = raw.strip()
    # An unencoded "+" in a query string arrives as a space: "10:00:00 03:00" meant "+03:00".
    text = re.sub(r" (\d{2}:\d{2})$", r"+\1", text)
    match = _RFC3339.match(text)
    if match is None:
        raise InvalidParameter(
            name,
            f"{name} must be an RFC 3339 timestamp with offset, like 2025-03-10T09:00:00-03:00",
        )
    day, clock, fraction, offset = match.groups()
    fraction = (fraction or "")[:7]  # fromisoformat takes at most microseconds
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        value = datetime.fromisoformat(f"{day}T{clock}{fraction}{offset}")
    except ValueError:
        raise InvalidParameter(name, f"{name} is not a valid date and time") from None
    if not _EARLIEST <= value <= _LATEST:
        raise InvalidParameter(name, f"{name} is out of range")
    return value


def _single(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name) or []
    if len(values) > 1:
        raise InvalidParameter(name, f"{name} is given more than once")
    return values[0] if values else None


def parse_window(
    params: Mapping[str, Sequence[str]], *, window_days: int, now: datetime | None = None
) -> Window:
    """The window asked for by query parameters (each name mapped to all its values).

    Neither bound: now .. now + ``window_days``. Only ``timeMin``: that .. that +
    ``window_days``. Only ``timeMax``: now .. that. Other parameters are ignored (a
    page may add a cache buster).
    """
    now = now or datetime.now(UTC)
    raw_min, raw_max = _single(params, "timeMin"), _single(params, "timeMax")
    if raw_min is None and raw_max is None:
        return Window(now, now + timedelta(days=window_days), default=True)
    time_min = parse_timestamp("timeMin", raw_min) if raw_min is not None else now
    if raw_max is None:
        return Window(time_min, time_min + timedelta(days=window_days))
    time_max = parse_timestamp("timeMax", raw_max)
    since = "timeMin" if raw_min is not None else "timeMin (now, as timeMin is not given)"
    if time_max <= time_min:
        raise InvalidParameter("timeMax", f"timeMax must be after {since}")
    if time_max - time_min > MAX_WINDOW:
        raise InvalidParameter(
            "timeMax", f"timeMax is more than {MAX_WINDOW.days} days after {since}"
        )
    return Window(time_min, time_max)


# --- the horizon, read once per TTL ----------------------------------------------------


@dataclass(frozen=True)
class Horizon:
    """Every busy slot of the calendar's mirror, holds included, sorted by start.

    ``rendered`` keeps the answers already cut from it, by window (at most
    MAX_RENDERED): a page asking the same window again costs a dictionary lookup.
    """

    slots: tuple[slots.Slot, ...]
    synced_at: datetime
    rendered: OrderedDict[Hashable, Any] = field(default_factory=OrderedDict, compare=False)
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)


MAX_RENDERED = 64


@dataclass(frozen=True)
class Payload:
    """A rendered answer: the JSON body and its strong ETag."""

    body: bytes
    etag: str
    slots: int


@dataclass(frozen=True)
class Served:
    payload: Payload
    stale: bool
    synced_at: datetime
    fresh_for: float  # seconds a client may reuse it


_cache = cache.SingleFlightCache()


def reset_cache() -> None:
    """Forget the cached horizon (tests start each case from an empty instance)."""
    _cache.clear()


def read_horizon(config: Config, now: datetime | None = None) -> Horizon:
    """One read of everything list_events serves: the days, the live holds, the sync."""
    now = now or datetime.now(UTC)
    first, last = slots.horizon(now, config.mirror_horizon_days)
    started = time.monotonic()
    status = sync_state.sync_status(config.calendar_id)
    synced_at = status.get("syncedAt")
    if not isinstance(synced_at, datetime) or not status.get("mirrorRebuiltAt"):
        log.warning(
            "busy slots unavailable: the calendar was never synced",
            extra={"reason": MirrorNotReady.code, "calendar_id": config.calendar_id},
        )
        raise MirrorNotReady("the calendar has not been synced yet")
    found = busy_time.slots_of(busy_time.read_days(config.calendar_id, first, last))
    holds = bookings.live_holds(config.hold_minutes, now)
    taken = {s.booking_id for s in found if s.booking_id}
    found.extend(h for h in holds if h.booking_id not in taken)
    found.sort(key=lambda s: (s.start, s.end))
    log.info(
        "read busy slots from the mirror",
        extra={
            "calendar_id": config.calendar_id,
            "busy": len(found),
            "holds": len(holds),
            "synced_at": synced_at.isoformat(),
            "duration_ms": round((time.monotonic() - started) * 1000),
        },
    )
    if now - synced_at > timedelta(minutes=config.mirror_max_age_minutes):
        log.warning(
            "the calendar mirror is stale: no successful sync for "
            f"{int((now - synced_at).total_seconds() // 60)} minutes",
            extra={"reason": "mirror_stale", "synced_at": synced_at.isoformat()},
        )
    return Horizon(tuple(found), synced_at)


def _slot(start: datetime, end: datetime, status: str, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "start": {"dateTime": start.astimezone(zone).isoformat(), "timeZone": zone.key},
        "end": {"dateTime": end.astimezone(zone).isoformat(), "timeZone": zone.key},
        "status": status,
    }


def cut(horizon: Horizon, window: Window, zone: ZoneInfo) -> Payload:
    """The window's answer, rendered once per horizon copy and window."""
    key = (window.cache_key(), zone.key)
    with horizon.lock:
        found = horizon.rendered.get(key)
        if found is not None:
            horizon.rendered.move_to_end(key)
            return found  # type: ignore[no-any-return]
    payload = render(horizon, window, zone)
    with horizon.lock:
        horizon.rendered[key] = payload
        while len(horizon.rendered) > MAX_RENDERED:
            horizon.rendered.popitem(last=False)
    return payload


def render(horizon: Horizon, window: Window, zone: ZoneInfo) -> Payload:
    chosen = [
        _slot(s.start, s.end, s.status, zone)
        for s in horizon.slots
        if s.start < window.time_max and s.end > window.time_min
    ]
    body = encoding.json_bytes(chosen)
    return Payload(body=body, etag=encoding.strong_etag(body), slots=len(chosen))


def busy_slots(window: Window) -> Served:
    """The busy slots of ``window``, cut from this instance's copy of the horizon.

    Raises MirrorNotReady before the first sync, StoreUnavailable when Firestore does
    not answer and no earlier copy is at hand (an earlier copy is served instead).
    """
    config = get_config()
    key: Hashable = (config.calendar_id, config.hold_minutes, config.mirror_horizon_days)
    served = _cache.get(key, config.list_cache_ttl_seconds, lambda: read_horizon(config))
    horizon: Horizon = served.value
    age = datetime.now(UTC) - horizon.synced_at
    stale = served.stale or age > timedelta(minutes=config.mirror_max_age_minutes)
    return Served(
        payload=cut(horizon, window, config.timezone),
        stale=stale,
        synced_at=horizon.synced_at,
        fresh_for=0.0 if stale else served.fresh_for,
    )
