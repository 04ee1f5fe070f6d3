"""The school's busy slots for the public booking page, cached per instance.

A busy slot is an event that blocks time: not cancelled, not transparent ("free").
Only its start, end and status leave this module; everything else about an event
(title, attendees, links, ids) stays inside Google.

Times come out in the school's zone (``CALENDAR_TIMEZONE``) whatever zone an event
was written in. An all-day event becomes the interval from 00:00 of its first day to
00:00 after its last day, in that zone, written like any other slot (``dateTime``
with offset, plus ``timeZone``), so the page never sees a ``date``-only slot.

Caching: each window has one entry per instance, fresh for ``LIST_CACHE_TTL_SECONDS``.
Concurrent misses for one window share one Calendar read (single flight). Requests
that give neither ``timeMin`` nor ``timeMax`` all share the "default window" entry,
whose window runs from the moment it was read: while fresh it is served as is, so its
start lags the present by at most the TTL. A failed read is remembered for the TTL
too, so a burst during an outage costs one attempt; if Google is unavailable and an
earlier result (of up to ``STALE_LIMIT_SECONDS``) exists, it is served as stale.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.core import encoding
from shared.core.config import Config, get_config
from shared.core.errors import (
    AdminReconnectRequired,
    ClasscalError,
    ConfigError,
    GoogleUnavailable,
    InvalidParameter,
    NotFound,
)
from shared.core.logs import get_logger
from shared.google import calendar

log = get_logger(__name__)

MAX_WINDOW = timedelta(days=90)
MAX_PARAMETER_LENGTH = 64  # "2025-03-10T10:00:00.123456789+05:30" is 35
PAGE_SIZE = 2500  # Calendar's maximum: fewest round trips
MAX_PAGES = 200
# Partial response: only what a busy slot needs, so Google sends (and we hold) no more.
FIELDS = "items(start,end,status,transparency),nextPageToken"
MAX_CACHE_ENTRIES = 64  # windows remembered per instance (least recently used go first)
STALE_LIMIT_SECONDS = 24 * 3600.0  # older than this, 503 is more honest than stale slots
FLIGHT_WAIT_SECONDS = 55.0  # under the default 60 s Cloud Functions request timeout

_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


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


# --- events to busy slots ---------------------------------------------------------------


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


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


def _slot(start: datetime, end: datetime, status: str, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "start": {"dateTime": start.astimezone(zone).isoformat(), "timeZone": zone.key},
        "end": {"dateTime": end.astimezone(zone).isoformat(), "timeZone": zone.key},
        "status": status,
    }


def fetch_busy_slots(
    window: Window, *, zone: ZoneInfo, api_key: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Every busy slot in ``window``, sorted by start; and counts for the log line."""
    intervals: list[tuple[datetime, datetime, str]] = []
    counts = {"pages": 0, "events": 0, "skipped": 0}
    page_token: str | None = None
    seen_tokens: set[str] = set()
    while True:
        params: dict[str, Any] = {
            "timeMin": _rfc3339(window.time_min),
            "timeMax": _rfc3339(window.time_max),
            "singleEvents": True,
            "orderBy": "startTime",
            "maxResults": PAGE_SIZE,
            "fields": FIELDS,
            "api_key": api_key,
        }
        if page_token:
            params["pageToken"] = page_token
        page = calendar.list_events(**params)
        counts["pages"] += 1
        for event in page.get("items") or []:
            counts["events"] += 1
            try:
                interval = busy_interval(event, zone)
            except (ValueError, TypeError, OverflowError):
                counts["skipped"] += 1  # one odd event must not hide every other slot
                continue
            if interval is not None:
                intervals.append((*interval, str(event.get("status") or "confirmed")))
        page_token = page.get("nextPageToken")
        if not page_token:
            break
        if page_token in seen_tokens or counts["pages"] >= MAX_PAGES:
            raise GoogleUnavailable(f"Calendar events.list did not finish in {MAX_PAGES} pages")
        seen_tokens.add(page_token)
    intervals.sort(key=lambda i: (i[0], i[1]))
    return [_slot(start, end, status, zone) for start, end, status in intervals], counts


# --- the cache --------------------------------------------------------------------------


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
    age: float  # seconds since the payload was read from Google
    fresh_for: float  # seconds a client may reuse it (0 when stale)


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.payload: Payload | None = None
        self.error: BaseException | None = None


@dataclass
class _Entry:
    payload: Payload | None = None
    fetched_at: float = 0.0
    error: ClasscalError | None = None
    failed_at: float = 0.0
    flight: _Flight | None = None


def _fresh_copy(error: BaseException) -> BaseException:
    """The same error without the traceback of the thread that first raised it."""
    try:
        clone = copy.copy(error)
    except Exception:
        return error
    return clone.with_traceback(None)


class SingleFlightCache:
    """Payloads by key, with single-flight loads, remembered failures and stale fallback."""

    def __init__(
        self,
        *,
        max_entries: int = MAX_CACHE_ENTRIES,
        stale_limit: float = STALE_LIMIT_SECONDS,
        flight_wait: float = FLIGHT_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._max_entries = max_entries
        self._stale_limit = stale_limit
        self._flight_wait = flight_wait
        self._clock = clock

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def get(self, key: Hashable, ttl: float, load: Callable[[], Payload]) -> Served:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
            self._entries.move_to_end(key)
            remembered = self._remembered(entry, ttl)
            if remembered is not None:
                return self._resolve(entry, *remembered, ttl)
            flight = entry.flight
            leader = flight is None
            if flight is None:
                flight = entry.flight = _Flight()
        if leader:
            self._fly(key, entry, flight, load)
        elif not flight.done.wait(self._flight_wait):
            error = GoogleUnavailable("a concurrent Calendar read did not finish in time")
            with self._lock:
                return self._resolve(entry, None, error, ttl)
        with self._lock:
            error = flight.error if leader or flight.error is None else _fresh_copy(flight.error)
            return self._resolve(entry, flight.payload, error, ttl)

    def _remembered(
        self, entry: _Entry, ttl: float
    ) -> tuple[Payload | None, ClasscalError | None] | None:
        """The entry's answer if it may be given without reading Google, else None."""
        now = self._clock()
        if entry.payload is not None and now - entry.fetched_at < ttl:
            return entry.payload, None
        if entry.error is not None and now - entry.failed_at < ttl:
            return None, _fresh_copy(entry.error)  # type: ignore[return-value]
        return None

    def _fly(
        self, key: Hashable, entry: _Entry, flight: _Flight, load: Callable[[], Payload]
    ) -> None:
        try:
            flight.payload = load()
        except BaseException as error:
            flight.error = error
        with self._lock:
            now = self._clock()
            if flight.payload is not None:
                entry.payload, entry.fetched_at, entry.error = flight.payload, now, None
            elif isinstance(flight.error, ClasscalError):
                entry.error, entry.failed_at = flight.error, now
            entry.flight = None
            self._evict()
        flight.done.set()

    def _resolve(
        self, entry: _Entry, payload: Payload | None, error: BaseException | None, ttl: float
    ) -> Served:
        """Called with the lock held: an answer from a payload, or from an error."""
        if payload is not None:
            age = max(0.0, self._clock() - entry.fetched_at)
            return Served(payload, stale=False, age=age, fresh_for=max(0.0, ttl - age))
        assert error is not None
        if isinstance(error, GoogleUnavailable) and entry.payload is not None:
            age = max(0.0, self._clock() - entry.fetched_at)
            if age <= self._stale_limit:
                return Served(entry.payload, stale=True, age=age, fresh_for=0.0)
        raise error

    def _evict(self) -> None:
        while len(self._entries) > self._max_entries:
            for key, entry in self._entries.items():
                if entry.flight is None:
                    del self._entries[key]
                    break
            else:
                return  # every entry is being loaded; trim on a later call


_cache = SingleFlightCache()


def reset_cache() -> None:
    """Forget every cached window (tests start each case from an empty instance)."""
    _cache.clear()


# --- the entry point for list_events ------------------------------------------------------


def _read(window: Window, config: Config) -> Payload:
    """Read ``window`` from Google and render it; log the outcome once per read."""
    api_key = config.calendar_api_key
    zone = config.timezone
    started = time.monotonic()
    context: dict[str, Any] = {
        "credentials": "api_key" if api_key else "admin",
        "window_start": _rfc3339(window.time_min),
        "window_end": _rfc3339(window.time_max),
    }
    with calendar.count_calls() as calls:
        try:
            try:
                slots, counts = fetch_busy_slots(window, zone=zone, api_key=api_key)
            except NotFound:
                raise _calendar_not_found(config) from None
        except AdminReconnectRequired as error:
            log.error(
                f"busy slots unavailable, the admin must reconnect Google: {error.message}",
                extra={**context, "reason": error.code, "calendar_calls": sum(calls.values())},
            )
            raise
        except GoogleUnavailable as error:
            log.warning(
                f"busy slots unavailable from Google: {error.message}",
                extra={**context, "reason": error.code, "calendar_calls": sum(calls.values())},
            )
            raise
        except ClasscalError as error:
            log.error(
                f"busy slots unavailable: {error.message}",
                extra={**context, "reason": error.code, "calendar_calls": sum(calls.values())},
            )
            raise
    body = encoding.json_bytes(slots)
    payload = Payload(body=body, etag=encoding.strong_etag(body), slots=len(slots))
    log.info(
        "read busy slots from Google",
        extra={
            **context,
            **counts,
            "busy": len(slots),
            "calendar_calls": sum(calls.values()),
            "duration_ms": round((time.monotonic() - started) * 1000),
        },
    )
    if counts["skipped"]:
        log.warning(
            "left out events without a readable start or end",
            extra={**context, "skipped": counts["skipped"]},
        )
    return payload


def _calendar_not_found(config: Config) -> ConfigError:
    if config.calendar_api_key:
        return ConfigError(
            f"CALENDAR_API_KEY cannot read calendar {config.calendar_id!r}: an API key reads "
            "only a public calendar (and not 'primary'); make the calendar public, or unset "
            "CALENDAR_API_KEY to read it with the admin's token"
        )
    return ConfigError(
        f"CALENDAR_ID {config.calendar_id!r} was not found in the connected Google account"
    )


def busy_slots(window: Window) -> Served:
    """The busy slots of ``window``: from this instance's cache, or read from Google.

    Raises AdminReconnectRequired, GoogleUnavailable (with no usable earlier result),
    ConfigError; each is logged once per attempt to read Google, not once per request.
    """
    config = get_config()
    key = (
        config.calendar_id,
        bool(config.calendar_api_key),
        config.calendar_timezone,
        window.cache_key(),
    )
    return _cache.get(key, config.list_cache_ttl_seconds, lambda: _read(window, config))
