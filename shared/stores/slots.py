"""Who has which time on a calendar: the mirror of its busy events, and classcal's claims.

Everything is kept per calendar id (``calendars/<id>``), so that more calendars can
come later without a migration, and per UTC day, so that the slot guard's transaction
reads one or two small documents, never a range:

- ``calendars/<id>/days/<YYYY-MM-DD>``: ``busy`` (the calendar's busy intervals that
  touch that day, keyed by event or instance id: start, end, status, and the booking
  id for classcal's own events; nothing personal) and ``claims`` (bookings classcal
  accepted for that time and has not let go of: paid and being scheduled, waiting, or
  scheduled; keyed by booking id);
- ``calendars/<id>/intervals/<key>``: where each mirrored interval is filed (its days,
  its recurring series), so that a moved or deleted event leaves every day it was on.

The guard (``find_clash``/``claim``) runs inside the booking's own transaction (see
``shared.stores.bookings``): it reads the day documents, so two transactions for
overlapping times always contend on at least one of them and Firestore lets only one
commit first; the other retries, then sees the claim.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from shared.core import intervals
from shared.core.logs import get_logger
from shared.stores import db

log = get_logger(__name__)

CALENDARS = "calendars"
DAYS = "days"
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


@dataclass(frozen=True)
class Taken:
    """Time a request cannot have: what holds it, in words that name no one."""

    start: datetime
    end: datetime
    what: str  # "class", "event", "checkout"


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime
    status: str
    booking_id: str | None


def calendar_key(calendar_id: str) -> str:
    # Calendar ids are email-like; quoting keeps any '/' out of the document path.
    return quote(calendar_id, safe="@.")


def _calendar(calendar_id: str) -> Any:
    return db.firestore_client().collection(CALENDARS).document(calendar_key(calendar_id))


def day_ref(calendar_id: str, day: str) -> Any:
    return _calendar(calendar_id).collection(DAYS).document(day)


def _interval_ref(calendar_id: str, key: str) -> Any:
    return _calendar(calendar_id).collection(INTERVALS).document(key)


def day_refs(calendar_id: str, start: datetime, end: datetime) -> list[Any]:
    return [day_ref(calendar_id, day) for day in intervals.days_touched(start, end)]


def _entry_times(entry: Any) -> tuple[datetime, datetime] | None:
    if not isinstance(entry, dict):
        return None
    start = intervals.parse_instant(entry.get("start"))
    end = intervals.parse_instant(entry.get("end"))
    if start is None or end is None or end <= start:
        return None
    return start, end


# --- the guard ----------------------------------------------------------------------


def find_clash(
    days: Iterable[Mapping[str, Any]], booking_id: str, start: datetime, end: datetime
) -> Taken | None:
    """The first claim or mirrored interval in ``days`` that overlaps ``[start, end)``,
    other than the booking's own claim and its own event."""
    for data in days:
        for other_id, entry in (data.get("claims") or {}).items():
            times = _entry_times(entry)
            if other_id != booking_id and times and intervals.overlaps(start, end, *times):
                return Taken(*times, what="class")
        for entry in (data.get("busy") or {}).values():
            times = _entry_times(entry)
            if times is None or entry.get("bookingId") == booking_id:
                continue
            if intervals.overlaps(start, end, *times):
                return Taken(*times, what="class" if entry.get("bookingId") else "event")
    return None


def claim(
    transaction: Any, refs: list[Any], booking_id: str, start: datetime, end: datetime
) -> None:
    """Write the booking's claim on every day it touches (after the transaction's reads)."""
    entry = {"start": start, "end": end, "claimedAt": datetime.now(UTC)}
    for ref in refs:
        transaction.set(ref, {"day": ref.id, "claims": {booking_id: entry}}, merge=True)


def release(transaction: Any, refs: Iterable[Any], booking_id: str) -> None:
    """Remove the booking's claim from the given days (a missing claim is fine)."""
    from google.cloud import firestore

    for ref in refs:
        transaction.set(ref, {"claims": {booking_id: firestore.DELETE_FIELD}}, merge=True)


def claim_record(calendar_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    """What a booking keeps of its claim, so that it can be released exactly."""
    return {
        "calendarId": calendar_id,
        "start": start,
        "end": end,
        "days": list(intervals.days_touched(start, end)),
    }


def refs_of_record(record: Any) -> list[Any]:
    if not isinstance(record, dict) or not isinstance(record.get("calendarId"), str):
        return []
    days = record.get("days") if isinstance(record.get("days"), list) else []
    return [day_ref(record["calendarId"], d) for d in days if isinstance(d, str) and d]


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
    """The days' busy intervals and claims as slots, each interval once.

    A claim whose booking's event is already mirrored is that event; a claim not yet
    mirrored (paid, being scheduled) is ``tentative``.
    """
    seen: dict[str, Slot] = {}
    mirrored_bookings: set[str] = set()
    claims: dict[str, Slot] = {}
    for data in days:
        for key, entry in (data.get("busy") or {}).items():
            times = _entry_times(entry)
            if times is None or key in seen:
                continue
            status = entry.get("status") if entry.get("status") == "tentative" else "confirmed"
            booking = entry.get("bookingId") if isinstance(entry.get("bookingId"), str) else None
            seen[key] = Slot(*times, status, booking)
            if booking:
                mirrored_bookings.add(booking)
        for booking_id, entry in (data.get("claims") or {}).items():
            times = _entry_times(entry)
            if times is not None:
                claims[booking_id] = Slot(*times, "tentative", booking_id)
    slots = list(seen.values())
    slots.extend(s for b, s in claims.items() if b not in mirrored_bookings)
    return slots


def horizon(now: datetime, days: int) -> tuple[datetime, datetime]:
    """The span the mirror keeps: from a day ago to ``days`` ahead."""
    return now - timedelta(days=1), now + timedelta(days=days)


# --- holds: checkouts the platform created, for HOLD_MINUTES -------------------------


def created_at(snapshot: Any) -> datetime | None:
    """When a booking was created: its ``createdAt``, else the document's create time."""
    data = snapshot.to_dict() or {}
    stamp = intervals.parse_instant(data.get("createdAt"))
    if stamp is None and getattr(snapshot, "create_time", None) is not None:
        stamp = intervals.parse_instant(snapshot.create_time)
    return stamp


_DECIDED = frozenset({"approved", "refunded", "cancelled", "charged_back"})


def _hold_of(snapshot: Any, now: datetime, hold: timedelta) -> Slot | None:
    data = snapshot.to_dict() or {}
    if data.get("status") != "pending" or data.get("slotClaim"):
        return None  # a paid booking holds its time through its claim
    if data.get("paymentStatus") in _DECIDED or data.get("schedulingState") == "failed":
        return None  # the checkout is over: paid (and claimed, or refused), or reversed
    created = created_at(snapshot)
    start = intervals.parse_instant(data.get("startTime"))
    end = intervals.parse_instant(data.get("endTime"))
    if created is None or start is None or end is None or end <= start:
        return None
    if created + hold <= now:
        return None
    return Slot(start, end, "tentative", snapshot.id)


def pending_query(bookings: Any) -> Any:
    from google.cloud.firestore_v1.base_query import FieldFilter

    return bookings.where(filter=FieldFilter("status", "==", "pending")).limit(1000)


def live_holds(snapshots: Iterable[Any], now: datetime, hold_minutes: int) -> list[Any]:
    """(slot, created) of every live hold among pending bookings' snapshots."""
    if hold_minutes <= 0:
        return []
    hold = timedelta(minutes=hold_minutes)
    found = []
    for snapshot in snapshots:
        slot = _hold_of(snapshot, now, hold)
        if slot is not None:
            found.append((slot, created_at(snapshot)))
    return found


def hold_clash(
    holds: Iterable[Any], booking_id: str, start: datetime, end: datetime, created: datetime | None
) -> Taken | None:
    """A live hold that overlaps and was created before this booking (earlier wins)."""
    for slot, hold_created in holds:
        if slot.booking_id == booking_id:
            continue
        if not intervals.overlaps(start, end, slot.start, slot.end):
            continue
        if created is None or hold_created < created:
            return Taken(slot.start, slot.end, what="checkout")
    return None


# --- the guard, inside the booking's transaction ------------------------------------


@dataclass(frozen=True)
class Guard:
    """The slot guard's settings for one claim: which calendar, how long holds last."""

    calendar_id: str
    hold_minutes: int


def guard(
    transaction: Any, client: Any, bookings: str, snapshot: Any, settings: Guard, now: datetime
) -> dict[str, Any]:
    """Decide the booking's time inside its transaction: the claim's fields to write,
    ``{"slotTaken": Taken}`` when it is not free, or {} when there is nothing to guard."""
    data = snapshot.to_dict() or {}
    start = intervals.parse_instant(data.get("startTime"))
    end = intervals.parse_instant(data.get("endTime"))
    if start is None or end is None or end <= start:
        return {}  # scheduling refuses the booking itself, with the reason
    record = claim_record(settings.calendar_id, start, end)
    held = data.get("slotClaim")
    if isinstance(held, dict) and {k: held.get(k) for k in record} == record:
        return {}  # claimed by an earlier attempt: the time is this booking's
    refs = day_refs(settings.calendar_id, start, end)
    days = [s.to_dict() or {} for s in client.get_all(refs, transaction=transaction)]
    pending = transaction.get(pending_query(client.collection(bookings)))
    holds = live_holds(pending, now, settings.hold_minutes)
    taken = find_clash(days, snapshot.id, start, end) or hold_clash(
        holds, snapshot.id, start, end, created_at(snapshot)
    )
    if taken is not None:
        return {"slotTaken": taken}
    if isinstance(held, dict):
        release(transaction, refs_of_record(held), snapshot.id)
    claim(transaction, refs, snapshot.id, start, end)
    return {"slotClaim": record}


def taken_message(taken: Taken) -> str:
    """What the student's booking says when its time is taken; it names no one."""
    what = {
        "class": "another class booked for that time",
        "event": "something already in the school's calendar",
        "checkout": "another student's booking that was started earlier and is being paid",
    }[taken.what]
    return (
        f"The class's time is no longer free: it clashes with {what} "
        f"({taken.start.isoformat()} to {taken.end.isoformat()}). No event was created; "
        "the payment needs a refund or the class a new time."
    )


def read_live_holds(client: Any, bookings: str, hold_minutes: int, now: datetime) -> list[Slot]:
    """The times checkouts in progress hold (pending bookings younger than the hold)."""
    if hold_minutes <= 0:
        return []
    query = pending_query(client.collection(bookings))
    with db.firestore_errors("read the checkouts in progress"):
        snapshots = list(query.stream(retry=db.firestore_read_retry(5.0), timeout=10.0))
    return [slot for slot, _created in live_holds(snapshots, now, hold_minutes)]
