"""Bookings the admin's console lists: every Firestore read it makes on ``virtualClasses``.

Three lists, each newest first and paged (the cursor is the last booking id of the
previous page), each served by a composite index declared in ``infra/firestore.tf``:

- **need a person**: ``schedulingState`` is ``waiting`` (a transient reason, such as the
  admin's Google connection being refused) or ``failed`` (a retry alone cannot fix it:
  the Meet conference failed, the event was deleted, the slot was taken), by
  ``schedulingUpdatedAt``;
- **refunds made**: bookings cancelled because their payment was refunded, by the school
  in MercadoPago (``cancellationReason: refunded``) or by classcal when the slot was
  taken (``slot_taken_refunded``), by ``cancelledAt``;
- **guests not yet invited**: group classes with a guest change not yet made in Google
  Calendar (``guestSyncPending``), by ``guestsUpdatedAt``.

Documents with missing or mistyped fields are listed with what they have; nothing here
writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from shared.core import ids
from shared.stores import bookings, db

NEEDS_A_PERSON = (bookings.WAITING, bookings.FAILED)
# The payment statuses and classcal's own reason that end a booking with a refund.
REFUND_REASONS = ("refunded", "slot_taken_refunded")
READ_TIMEOUT = 10.0

T = TypeVar("T")


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
class Refund:
    booking_id: str
    reason: str  # refunded | slot_taken_refunded
    message: str
    cancelled_at: datetime | None
    start: datetime | None
    payment_id: str | None
    amount: float | None
    currency: str | None


@dataclass(frozen=True)
class PendingGuests:
    booking_id: str
    guest_states: tuple[str, ...]  # each guest's invitation state, as stored
    reason: str | None  # why the last pass stopped, when one did
    since: datetime | None
    start: datetime | None
    status: str
    calendar_link: str | None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None  # the booking id to continue after, None on the last page


def _time(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _link(value: Any) -> str | None:
    return value if isinstance(value, str) and value.startswith("https://") else None


def _problem(snapshot: Any) -> Problem:
    data = snapshot.to_dict() or {}
    attempts = data.get("schedulingAttempts")
    return Problem(
        booking_id=snapshot.id,
        state=str(data.get("schedulingState") or ""),
        reason=str(data.get("schedulingReason") or "unknown"),
        message=str(data.get("schedulingMessage") or ""),
        since=_time(data.get("schedulingUpdatedAt")) or _time(data.get("lastAttemptAt")),
        attempts=attempts if isinstance(attempts, int) else 0,
        start=_time(data.get("startTime")),
        status=str(data.get("status") or ""),
        calendar_link=_link(data.get("calendarLink")),
    )


def _refund(snapshot: Any) -> Refund:
    data = snapshot.to_dict() or {}
    amount = data.get("paymentAmount")
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        amount = None
    payment_id = data.get("paymentId")
    currency = data.get("paymentCurrency")
    reason = str(data.get("cancellationReason") or "")
    return Refund(
        booking_id=snapshot.id,
        reason=reason,
        # classcal's own refund explains itself; a refund made in MercadoPago does not.
        message=str(data.get("schedulingMessage") or "")
        if data.get("schedulingReason") == reason
        else "",
        cancelled_at=_time(data.get("cancelledAt")),
        start=_time(data.get("startTime")),
        payment_id=str(payment_id) if isinstance(payment_id, str | int) else None,
        amount=float(amount) if amount is not None else None,
        currency=currency if isinstance(currency, str) else None,
    )


def _pending_guests(snapshot: Any) -> PendingGuests:
    data = snapshot.to_dict() or {}
    invitations = data.get("guestInvitations")
    entries = invitations.values() if isinstance(invitations, dict) else ()
    reason = data.get("guestSyncReason")
    return PendingGuests(
        booking_id=snapshot.id,
        guest_states=tuple(
            str(entry.get("state") or "") for entry in entries if isinstance(entry, dict)
        ),
        reason=reason if isinstance(reason, str) and reason else None,
        since=_time(data.get("guestsUpdatedAt")),
        start=_time(data.get("startTime")),
        status=str(data.get("status") or ""),
        calendar_link=_link(data.get("calendarLink")),
    )


def _collection() -> Any:
    return db.firestore_client().collection(bookings.BOOKINGS)


def _page(
    what: str, query: Any, newest_by: str, parse: Callable[[Any], T], size: int, after: str | None
) -> Page[T]:
    """One page of ``query`` (ordered newest first by ``newest_by``, then by id),
    continuing after the booking ``after`` when it is still in the list."""
    with db.firestore_errors(what):
        if after and ids.is_document_id(after):
            cursor = _collection().document(after).get(timeout=READ_TIMEOUT)
            if cursor.exists and (cursor.to_dict() or {}).get(newest_by):
                query = query.start_after(cursor)
        snapshots = list(
            query.limit(size + 1).get(
                retry=db.firestore_read_retry(READ_TIMEOUT), timeout=READ_TIMEOUT
            )
        )
    found = [parse(s) for s in snapshots[:size]]
    more = len(snapshots) > size
    return Page(found, snapshots[size - 1].id if more and found else None)


def problems(page_size: int, after: str | None = None) -> Page[Problem]:
    """One page of bookings waiting or failed, newest first."""
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        db.firestore_client()
        .collection(bookings.BOOKINGS)
        .where(filter=FieldFilter("schedulingState", "in", list(NEEDS_A_PERSON)))
        .order_by("schedulingUpdatedAt", direction=firestore.Query.DESCENDING)
        .order_by("__name__", direction=firestore.Query.DESCENDING)
    )
    what = "list the bookings that need a person"
    return _page(what, query, "schedulingUpdatedAt", _problem, page_size, after)


def refunds(page_size: int, after: str | None = None) -> Page[Refund]:
    """One page of bookings cancelled by a refund, the newest refund first."""
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        db.firestore_client()
        .collection(bookings.BOOKINGS)
        .where(filter=FieldFilter("cancellationReason", "in", list(REFUND_REASONS)))
        .order_by("cancelledAt", direction=firestore.Query.DESCENDING)
        .order_by("__name__", direction=firestore.Query.DESCENDING)
    )
    return _page("list the refunded bookings", query, "cancelledAt", _refund, page_size, after)


def pending_guests(page_size: int, after: str | None = None) -> Page[PendingGuests]:
    """One page of classes whose guest changes are not yet in Google Calendar, the newest
    change first."""
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        db.firestore_client()
        .collection(bookings.BOOKINGS)
        .where(filter=FieldFilter("guestSyncPending", "==", True))
        .order_by("guestsUpdatedAt", direction=firestore.Query.DESCENDING)
        .order_by("__name__", direction=firestore.Query.DESCENDING)
    )
    what = "list the classes with guests not yet invited"
    return _page(what, query, "guestsUpdatedAt", _pending_guests, page_size, after)


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
