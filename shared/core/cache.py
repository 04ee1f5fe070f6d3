"""A per-instance cache with single-flight loads, remembered failures and stale answers.

``get(key, ttl, load)``: a fresh value is served from memory; when it is older than
``ttl`` one caller (the leader) loads it again while every concurrent caller for the
same key waits for that one load. A failure (a ``ClasscalError``) is remembered for the
ttl too, so a burst of requests cannot turn into a burst of loads; a transient failure
with an older value at hand serves that value, marked stale, for at most
``stale_limit`` seconds.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from shared.core.errors import ClasscalError, StoreUnavailable, TransientError

MAX_ENTRIES = 64
STALE_LIMIT_SECONDS = 24 * 3600.0
FLIGHT_WAIT_SECONDS = 55.0  # under the default 60 s Cloud Functions request timeout


@dataclass(frozen=True)
class Served:
    value: Any
    stale: bool
    age: float  # seconds since the value was loaded
    fresh_for: float  # seconds a client may reuse it (0 when stale)


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.payload: Any = None
        self.error: BaseException | None = None


@dataclass
class _Entry:
    payload: Any = None
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
        max_entries: int = MAX_ENTRIES,
        stale_limit: float = STALE_LIMIT_SECONDS,
        flight_wait: float = FLIGHT_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        unavailable: Callable[[str], ClasscalError] = StoreUnavailable,
    ) -> None:
        self._unavailable = unavailable
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._max_entries = max_entries
        self._stale_limit = stale_limit
        self._flight_wait = flight_wait
        self._clock = clock

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def get(self, key: Hashable, ttl: float, load: Callable[[], Any]) -> Served:
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
            error = self._unavailable("a concurrent read did not finish in time")
            with self._lock:
                return self._resolve(entry, None, error, ttl)
        with self._lock:
            error = flight.error if leader or flight.error is None else _fresh_copy(flight.error)
            return self._resolve(entry, flight.payload, error, ttl)

    def _remembered(self, entry: _Entry, ttl: float) -> tuple[Any, ClasscalError | None] | None:
        """The entry's answer if it may be given without loading again, else None."""
        now = self._clock()
        if entry.payload is not None and now - entry.fetched_at < ttl:
            return entry.payload, None
        if entry.error is not None and now - entry.failed_at < ttl:
            return None, _fresh_copy(entry.error)  # type: ignore[return-value]
        return None

    def _fly(self, key: Hashable, entry: _Entry, flight: _Flight, load: Callable[[], Any]) -> None:
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
        self, entry: _Entry, payload: Any, error: BaseException | None, ttl: float
    ) -> Served:
        """Called with the lock held: an answer from a payload, or from an error."""
        if payload is not None:
            age = max(0.0, self._clock() - entry.fetched_at)
            return Served(payload, stale=False, age=age, fresh_for=max(0.0, ttl - age))
        assert error is not None
        if isinstance(error, TransientError) and entry.payload is not None:
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
