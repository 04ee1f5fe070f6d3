"""Who has which time on a calendar: the mirror of its busy events, and classcal's claims.

Everything is kept per calendar id (``calendars/<id>``), so that more calendars can
come later without a migration, and per UTC day, so that the slot guard's transaction
reads one or two small documents, never a range:

- ``calendars/<id>/days/<YYYY-MM-DD>``: ``busy``, the calendar's busy intervals that
  touch that day, keyed by event or instance id: start, end, status, and the booking
  id for classcal's own events; nothing personal. Written by the sync only.
- ``calendars/<id>/claims/<YYYY-MM-DDTHH>``: ``claims``, the bookings classcal accepted
  for time in that UTC hour and has not let go of (paid and being scheduled, waiting,
  or scheduled), keyed by booking id. Written by the guard only.
- ``calendars/<id>/intervals/<key>``: where each mirrored interval is filed (its days,
  its recurring series), so that a moved or deleted event leaves every day it was on.

The guard (``guard``) runs inside the booking's own transaction (see
``shared.stores.bookings``): it reads the hour documents the class touches and writes
its claim there, so two transactions for overlapping times always contend on at least
one of them and Firestore lets only one commit first; the other retries, then sees the
claim. It only reads the day documents (and the few overlapping checkouts), so payments
for different hours do not contend.
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
CLAIMS = "claims"


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


def day_refs(calendar_id: str, start: datetime, end: datetime) -> list[Any]:
    return [day_ref(calendar_id, day) for day in intervals.days_touched(start, end)]


def claim_refs(calendar_id: str, start: datetime, end: datetime) -> list[Any]:
    return [
        _calendar(calendar_id).collection(CLAIMS).document(hour)
        for hour in intervals.hours_touched(start, end)
    ]


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
    claims: Iterable[Mapping[str, Any]],
    days: Iterable[Mapping[str, Any]],
    booking_id: str,
    start: datetime,
    end: datetime,
) -> Taken | None:
    """The first claim or mirrored interval that overlaps ``[start, end)``, other than
    the booking's own claim and its own event."""
    for data in claims:
        for other_id, entry in (data.get("claims") or {}).items():
            times = _entry_times(entry)
            if other_id != booking_id and times and intervals.overlaps(start, end, *times):
                return Taken(*times, what="class")
    for data in days:
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
    """Write the booking's claim on every hour it touches (after the transaction's reads)."""
    entry = {"start": start, "end": end, "claimedAt": datetime.now(UTC)}
    for ref in refs:
        transaction.set(ref, {"hour": ref.id, "claims": {booking_id: entry}}, merge=True)


def release(transaction: Any, refs: Iterable[Any], booking_id: str) -> None:
    """Remove the booking's claim from the given days (a missing claim is fine)."""
    from google.cloud import firestore

    for ref in refs:
        transaction.set(ref, {"claims": {booking_id: firestore.DELETE_FIELD}}, merge=True)


def release_claim_of(transaction: Any, data: Mapping[str, Any], booking_id: str) -> dict[str, Any]:
    """Free the booking's claimed time (a write only); the field to clear on the booking."""
    from google.cloud import firestore

    record = data.get("slotClaim")
    if not isinstance(record, dict):
        return {}
    release(transaction, refs_of_record(record), booking_id)
    return {"slotClaim": firestore.DELETE_FIELD}


def claim_record(calendar_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    """What a booking keeps of its claim, so that it can be released exactly."""
    return {
        "calendarId": calendar_id,
        "start": start,
        "end": end,
        "hours": list(intervals.hours_touched(start, end)),
    }


def refs_of_record(record: Any) -> list[Any]:
    if not isinstance(record, dict) or not isinstance(record.get("calendarId"), str):
        return []
    hours = record.get("hours") if isinstance(record.get("hours"), list) else []
    claims = _calendar(record["calendarId"]).collection(CLAIMS)
    return [claims.document(h) for h in hours if isinstance(h, str) and h and "/" not in h]


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


def _times(data: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    start = intervals.parse_instant(data.get("startTime"))
    end = intervals.parse_instant(data.get("endTime"))
    return (start, end) if start is not None and end is not None and end > start else None


def _hold_of(snapshot: Any, now: datetime, hold: timedelta) -> Slot | None:
    data = snapshot.to_dict() or {}
    if data.get("status") != "pending" or data.get("slotClaim"):
        return None  # a paid booking holds its time through its claim
    if data.get("paymentStatus") in _DECIDED or data.get("schedulingState") == "failed":
        return None  # the checkout is over: paid (and claimed, or refused), or reversed
    created = created_at(snapshot)
    times = _times(data)
    if created is None or times is None or created + hold <= now:
        return None
    return Slot(*times, "tentative", snapshot.id)


def _claimed_of(snapshot: Any) -> Slot | None:
    """A paid booking still being scheduled: its time is taken, shown as tentative."""
    data = snapshot.to_dict() or {}
    times = _times(data)
    if data.get("status") != "pending" or not data.get("slotClaim") or times is None:
        return None
    return Slot(*times, "tentative", snapshot.id)


def pending_overlapping(client: Any, start: datetime, end: datetime) -> list[Any]:
    """Pending bookings whose time overlaps ``[start, end)``: the checkouts a booking for
    that time must look at. Checkouts nobody paid stay pending for good, so this asks
    Firestore for the overlap itself (index bookings_pending_overlapping) rather than
    reading pending bookings up to some cap."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        client.collection(db.BOOKINGS)
        .where(filter=FieldFilter("status", "==", "pending"))
        .where(filter=FieldFilter("endTime", ">", start))
        .where(filter=FieldFilter("startTime", "<", end))
    )
    found = _stream(query) + _with_text_times(client)
    return [
        s for s in found if (t := _times(s.to_dict() or {})) and intervals.overlaps(start, end, *t)
    ]


def pending_ending_after(client: Any, now: datetime) -> list[Any]:
    """Pending bookings whose class has not ended: every checkout that may still hold
    time (index bookings_scheduled_by_end's shape: status, then endTime)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        client.collection(db.BOOKINGS)
        .where(filter=FieldFilter("status", "==", "pending"))
        .where(filter=FieldFilter("endTime", ">", now))
    )
    found = _stream(query) + _with_text_times(client)
    return [s for s in found if (t := _times(s.to_dict() or {})) and t[1] > now]


def _with_text_times(client: Any) -> list[Any]:
    """Pending bookings with a time written as a string (RFC 3339, which the booking page
    may write): a range over timestamps never matches a string, so these are read apart,
    all of them (a range over strings matches only strings), and filtered by the caller.
    Usually none."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    queries = [
        client.collection(db.BOOKINGS)
        .where(filter=FieldFilter("status", "==", "pending"))
        .where(filter=FieldFilter("endTime", ">=", "")),
        client.collection(db.BOOKINGS)
        .where(filter=FieldFilter("status", "==", "pending"))
        .where(filter=FieldFilter("startTime", ">=", "")),
    ]
    found = {snapshot.id: snapshot for query in queries for snapshot in _stream(query)}
    return list(found.values())


def _stream(query: Any) -> list[Any]:
    with db.firestore_errors("read the checkouts in progress"):
        return list(query.stream(retry=db.firestore_read_retry(5.0), timeout=10.0))


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


def overlapping_checkouts(
    client: Any, booking_id: str, start: datetime, end: datetime
) -> list[Any]:
    """References of pending bookings whose time overlaps ``[start, end)``, read outside
    the transaction: the guard then reads just these inside it, so that payments for
    other times do not contend on every checkout in progress."""
    found = pending_overlapping(client, start, end)
    return [snapshot.reference for snapshot in found if snapshot.id != booking_id]


def guard(
    transaction: Any,
    client: Any,
    snapshot: Any,
    settings: Guard,
    now: datetime,
    checkouts: list[Any],
) -> dict[str, Any]:
    """Decide the booking's time inside its transaction: the claim's fields to write,
    ``{"slotTaken": Taken}`` when it is not free, or {} when there is nothing to guard.

    ``checkouts``: the overlapping pending bookings found just before (see
    ``overlapping_checkouts``); a hold that appears later was created later, and loses.
    """
    data = snapshot.to_dict() or {}
    times = _times(data)
    if times is None:
        return {}  # scheduling refuses the booking itself, with the reason
    start, end = times
    record = claim_record(settings.calendar_id, start, end)
    held = data.get("slotClaim")
    if isinstance(held, dict) and {k: held.get(k) for k in record} == record:
        return {}  # claimed by an earlier attempt: the time is this booking's
    claims = claim_refs(settings.calendar_id, start, end)
    days = day_refs(settings.calendar_id, start, end)
    found = {
        s.reference.path: s
        for s in client.get_all([*claims, *days, *checkouts], transaction=transaction)
    }
    claim_docs = [found[r.path].to_dict() or {} for r in claims if r.path in found]
    day_docs = [found[r.path].to_dict() or {} for r in days if r.path in found]
    holds = live_holds(
        [found[r.path] for r in checkouts if r.path in found], now, settings.hold_minutes
    )
    taken = find_clash(claim_docs, day_docs, snapshot.id, start, end) or hold_clash(
        holds, snapshot.id, start, end, created_at(snapshot)
    )
    if taken is not None:
        return {"slotTaken": taken}
    if isinstance(held, dict):
        release(transaction, refs_of_record(held), snapshot.id)
    claim(transaction, claims, snapshot.id, start, end)
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


def read_live_holds(client: Any, hold_minutes: int, now: datetime) -> list[Slot]:
    """The time pending bookings hold: live checkouts (younger than the hold) and paid
    bookings still being scheduled, each as a tentative slot. Only classes that have not
    ended are read: the booking page shows nothing earlier."""
    snapshots = pending_ending_after(client, now)
    found = [slot for slot, _created in live_holds(snapshots, now, hold_minutes)]
    found.extend(slot for slot in (_claimed_of(s) for s in snapshots) if slot is not None)
    return found
