"""Bookings that need a person, for the admin's console: every Firestore read it makes
on ``virtualClasses``.

A booking needs a person while its ``schedulingState`` is ``waiting`` (a transient
reason, such as the admin's Google connection being refused) or ``failed`` (a retry
alone cannot fix it: the Meet conference failed, the event was deleted, the slot was
taken). Pages are newest first by ``schedulingUpdatedAt``; the cursor is the last
booking id of the previous page. The composite index this query needs is declared in
``infra/firestore.tf``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.core import ids
from shared.stores import bookings, db

NEEDS_A_PERSON = (bookings.WAITING, bookings.FAILED)
READ_TIMEOUT = 10.0


@dataclass(frozen=True)
class Problem:
    booking_id: str
    state: str  # waiting | failed
    reason: str
    message: str
    since: datetime | None
    attempts: int
    start: datetime | None
    status: str
    calendar_link: str | None


@dataclass(frozen=True)
class Page:
    problems: list[Problem]
    next_cursor: str | None  # the booking id to continue after, None on the last page


def _problem(snapshot: Any) -> Problem:
    data = snapshot.to_dict() or {}
    attempts = data.get("schedulingAttempts")
    start = data.get("startTime")
    since = data.get("schedulingUpdatedAt") or data.get("lastAttemptAt")
    link = data.get("calendarLink")
    return Problem(
        booking_id=snapshot.id,
        state=str(data.get("schedulingState") or ""),
        reason=str(data.get("schedulingReason") or "unknown"),
        message=str(data.get("schedulingMessage") or ""),
        since=since if isinstance(since, datetime) else None,
        attempts=attempts if isinstance(attempts, int) else 0,
        start=start if isinstance(start, datetime) else None,
        status=str(data.get("status") or ""),
        calendar_link=link if isinstance(link, str) and link.startswith("https://") else None,
    )


def problems(page_size: int, after: str | None = None) -> Page:
    """One page of bookings waiting or failed, newest first."""
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    client = db.firestore_client()
    collection = client.collection(bookings.BOOKINGS)
    query = (
        collection.where(filter=FieldFilter("schedulingState", "in", list(NEEDS_A_PERSON)))
        .order_by("schedulingUpdatedAt", direction=firestore.Query.DESCENDING)
        .order_by("__name__", direction=firestore.Query.DESCENDING)
    )
    with db.firestore_errors("list the bookings that need a person"):
        if after and ids.is_document_id(after):
            cursor = collection.document(after).get(timeout=READ_TIMEOUT)
            if cursor.exists and (cursor.to_dict() or {}).get("schedulingUpdatedAt"):
                query = query.start_after(cursor)
        snapshots = list(
            query.limit(page_size + 1).get(
                retry=db.firestore_read_retry(READ_TIMEOUT), timeout=READ_TIMEOUT
            )
        )
    found = [_problem(s) for s in snapshots[:page_size]]
    more = len(snapshots) > page_size
    return Page(found, found[-1].booking_id if more and found else None)


def get_problem(booking_id: str) -> Problem | None:
    """The booking, if it exists and still needs a person."""
    if not ids.is_document_id(booking_id):
        return None
    with db.firestore_errors("read a booking"):
        snapshot = (
            db.firestore_client()
            .collection(bookings.BOOKINGS)
            .document(booking_id)
            .get(retry=db.firestore_read_retry(READ_TIMEOUT), timeout=READ_TIMEOUT)
        )
    if not snapshot.exists:
        return None
    problem = _problem(snapshot)
    return problem if problem.state in NEEDS_A_PERSON else None
