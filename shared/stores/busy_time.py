"""The calendar's busy time as classcal mirrors it: day documents and their index.

``calendars/<id>/days/<YYYY-MM-DD>`` holds ``busy``: every busy interval touching that
UTC day (a mirrored event or recurring instance: start, end, status and, for classcal's
events, the booking id; nothing personal), keyed by event or instance id.
``calendars/<id>/intervals/<key>`` files each interval (its days, its recurring
series), so that a moved or deleted event leaves every day it was on. Only the calendar
sync writes here (``shared.domain.mirror``); the slot guard and list_events read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.core import intervals
from shared.stores import db
from shared.stores.slots import DAYS, Slot, _calendar, _entry_times, day_ref

INTERVALS = "intervals"
MAX_BATCH = 400  # under Firestore's 500 writes per batch


@dataclass(frozen=True)
class Busy:
    """One busy interval of the calendar (a mirrored event or instance)."""

    key: str
    start: datetime
    end: datetime
    status: str = "confirmed"
    booking_id: str | None = None
    series_id: str | None = None

    def stored(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "status": self.status,
            "bookingId": self.booking_id,
        }


def _interval_ref(calendar_id: str, key: str) -> Any:
    return _calendar(calendar_id).collection(INTERVALS).document(key)


# --- the mirror ---------------------------------------------------------------------


def _write_busy(transaction: Any, calendar_id: str, busy_by_day: dict[str, Any]) -> None:
    for day, busy in busy_by_day.items():
        transaction.set(
            day_ref(calendar_id, day),
            {"day": day, "calendarId": calendar_id, "busy": busy},
            merge=["day", "calendarId", "busy"],
        )


def replace(
    calendar_id: str, removed_keys: Iterable[str], series: str | None, added: list[Busy]
) -> None:
    """Remove intervals (by key, and every instance of ``series``), then file ``added``.

    One transaction: the index documents say which days each old interval was on.
    """
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    client = db.firestore_client()
    removed = set(removed_keys) | {b.key for b in added}

    @firestore.transactional
    def body(transaction: Any) -> None:
        index: dict[str, dict[str, Any]] = {}
        refs = [_interval_ref(calendar_id, key) for key in sorted(removed)]
        for snapshot in client.get_all(refs, transaction=transaction) if refs else []:
            if snapshot.exists:
                index[snapshot.id] = snapshot.to_dict() or {}
        if series:
            query = (
                _calendar(calendar_id)
                .collection(INTERVALS)
                .where(filter=FieldFilter("seriesId", "==", series))
            )
            for snapshot in transaction.get(query):
                index[snapshot.id] = snapshot.to_dict() or {}
        days: set[str] = set()
        for data in index.values():
            days.update(d for d in data.get("days") or [] if isinstance(d, str))
        new_days = {b.key: list(intervals.days_touched(b.start, b.end)) for b in added}
        for wanted in new_days.values():
            days.update(wanted)
        day_list = sorted(days)
        snapshots = (
            client.get_all([day_ref(calendar_id, d) for d in day_list], transaction=transaction)
            if day_list
            else []
        )
        current = {s.id: (s.to_dict() or {}).get("busy") or {} for s in snapshots}
        busy_by_day: dict[str, dict[str, Any]] = {d: dict(current.get(d) or {}) for d in day_list}
        for key in index:
            for day in busy_by_day:
                busy_by_day[day].pop(key, None)
        for item in added:
            for day in new_days[item.key]:
                busy_by_day[day][item.key] = item.stored()
        _write_busy(transaction, calendar_id, busy_by_day)
        for key in index:
            if key not in new_days:
                transaction.delete(_interval_ref(calendar_id, key))
        for item in added:
            transaction.set(
                _interval_ref(calendar_id, item.key),
                {**item.stored(), "seriesId": item.series_id, "days": new_days[item.key]},
            )

    with db.firestore_errors("update the calendar mirror"):
        body(client.transaction())


def rebuild(calendar_id: str, busy: list[Busy], *, since: datetime) -> int:
    """Replace the mirror from ``since`` on with ``busy`` (a full listing). Claims stay.

    Written in batches that set only the ``busy`` field of each day, so claims written
    meanwhile by the guard are never lost. Returns the number of days written.
    """
    client = db.firestore_client()
    by_day: dict[str, dict[str, Any]] = {}
    filed: dict[str, list[str]] = {}
    for item in busy:
        days = [d for d in intervals.days_touched(item.start, item.end)]
        filed[item.key] = days
        for day in days:
            by_day.setdefault(day, {})[item.key] = item.stored()
    first_day = intervals.day_key(since.astimezone(UTC).date())
    with db.firestore_errors("rebuild the calendar mirror"):
        existing_days = [
            s.id
            for s in _calendar(calendar_id).collection(DAYS).select(["day"]).stream()
            if s.id >= first_day
        ]
        existing_index = [s.id for s in _calendar(calendar_id).collection(INTERVALS).stream()]
        writes: list[tuple[str, Any, dict[str, Any] | None]] = []
        for day in sorted(set(existing_days) | {d for d in by_day if d >= first_day}):
            writes.append(("day", day_ref(calendar_id, day), by_day.get(day, {})))
        for key in existing_index:
            if key not in filed:
                writes.append(("delete", _interval_ref(calendar_id, key), None))
        for item in busy:
            record = {**item.stored(), "seriesId": item.series_id, "days": filed[item.key]}
            writes.append(("set", _interval_ref(calendar_id, item.key), record))
        for chunk in range(0, len(writes), MAX_BATCH):
            batch = client.batch()
            for kind, ref, value in writes[chunk : chunk + MAX_BATCH]:
                if kind == "day":
                    batch.set(
                        ref,
                        {"day": ref.id, "calendarId": calendar_id, "busy": value},
                        merge=["day", "calendarId", "busy"],
                    )
                elif kind == "delete":
                    batch.delete(ref)
                else:
                    batch.set(ref, value)
            batch.commit()
    return len(by_day)


def read_days(calendar_id: str, first: datetime, last: datetime) -> list[dict[str, Any]]:
    """Every day document from ``first``'s day to ``last``'s (one query)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    low = intervals.day_key(first.astimezone(UTC).date())
    high = intervals.day_key(last.astimezone(UTC).date())
    query = (
        _calendar(calendar_id)
        .collection(DAYS)
        .where(filter=FieldFilter("day", ">=", low))
        .where(filter=FieldFilter("day", "<=", high))
    )
    with db.firestore_errors("read the calendar's busy days"):
        stream = query.stream(retry=db.firestore_read_retry(5.0), timeout=10.0)
        return [s.to_dict() or {} for s in stream]


def slots_of(days: Iterable[Mapping[str, Any]]) -> list[Slot]:
    """The days' mirrored busy intervals as slots, each interval once."""
    seen: dict[str, Slot] = {}
    for data in days:
        for key, entry in (data.get("busy") or {}).items():
            times = _entry_times(entry)
            if times is None or key in seen:
                continue
            status = entry.get("status") if entry.get("status") == "tentative" else "confirmed"
            booking = entry.get("bookingId") if isinstance(entry.get("bookingId"), str) else None
            seen[key] = Slot(*times, status, booking)
    return list(seen.values())
