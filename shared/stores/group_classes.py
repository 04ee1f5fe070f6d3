"""Firestore calls of group classes: guests joining and leaving, their invitations, guessing.

A guest's join or leave is one atomic write of the booking (``virtualClasses``) and the
guest's user activity (``userActivities``): ``change_membership`` reads both, asks the
caller's ``decide`` (a rule of ``shared.domain.group_classes``, given plain values) what
to write, and commits it only over the version it read, so twenty students asking for
the last two seats at once get exactly two seats. Wrong access codes are counted per
user in ``joinAttempts``.

The Calendar side (``claim_guest_sync`` / ``finish_guest_sync``) takes the booking's
guest lease, so one worker at a time makes a class's invitations; the booking's
``guestChanges`` counter says whether a change arrived while it worked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from shared.core import retry
from shared.core.errors import BookingBusy, InvalidBooking, StoreUnavailable
from shared.stores import bookings
from shared.stores.leases import LeaseFields

ATTEMPTS = "joinAttempts"
GUEST_LEASE = LeaseFields("guestSyncLease")
# Twenty students on one class's last seats: each loser of a round reads again.
MEMBERSHIP_ATTEMPTS = 40

T = TypeVar("T")


@dataclass(frozen=True)
class Change:
    """What ``decide`` wants written: booking fields to set, the activity to create or
    update (plain values), and ``value``, handed back to the caller."""

    value: Any
    booking: Mapping[str, Any] = field(default_factory=dict)
    create_activity: Mapping[str, Any] | None = None
    update_activity: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class GuestClaim:
    """``claimed`` (the caller holds the guest lease), ``idle`` (nothing waits) or
    ``missing``; ``data`` is the booking as read."""

    state: str
    data: dict[str, Any]


def _transact(what: str, body: Callable[[Any], T], attempts: int = 5, rounds: int = 1) -> T:
    """``body`` in a transaction; on contention (every attempt aborted) wait a little,
    with jitter, and try again, up to ``rounds`` times: twenty students on one class's
    last seats must all get an answer, not a 503."""
    from google.api_core import exceptions
    from google.cloud import firestore

    client = bookings._client()
    with bookings._store_errors(what):
        for round_ in range(rounds):
            try:
                return firestore.transactional(body)(client.transaction(max_attempts=attempts))
            except (exceptions.Aborted, ValueError) as error:
                aborted = isinstance(error, exceptions.Aborted) or isinstance(
                    error.__cause__, exceptions.Aborted
                )
                if not aborted or round_ == rounds - 1:
                    raise
                retry.sleep(retry.CONTENTION.delay(round_))
    raise AssertionError("unreachable")


# --- finding the class and the student -----------------------------------------------


def bookings_with_access_code(code: str) -> list[tuple[str, dict[str, Any]]]:
    """The bookings whose ``accessCode`` is ``code`` (at most two: one is expected)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        bookings._client()
        .collection(bookings.BOOKINGS)
        .where(filter=FieldFilter("accessCode", "==", code))
        .limit(2)
    )
    with bookings._store_errors("find the class of an access code"):
        return [
            (s.id, s.to_dict() or {}) for s in query.get(retry=bookings._read_retry(), timeout=5.0)
        ]


def users_with_email(candidates: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """``users`` documents whose ``email`` is one of ``candidates`` (spellings of one
    address; the caller compares them without case)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        bookings._client()
        .collection(bookings.USERS)
        .where(filter=FieldFilter("email", "in", candidates[:30]))
        .limit(5)
    )
    with bookings._store_errors("find the student"):
        return [
            (s.id, s.to_dict() or {}) for s in query.get(retry=bookings._read_retry(), timeout=5.0)
        ]


# --- wrong codes ------------------------------------------------------------------------


def record_guess(
    user_id: str, decide: Callable[[list[datetime]], tuple[T, list[datetime] | None]]
) -> T:
    """Read the user's recent wrong codes, let ``decide`` answer and say what to keep
    (None: write nothing), in one transaction: parallel guesses are counted one by one."""
    ref = bookings._client().collection(ATTEMPTS).document(user_id)

    def body(transaction: Any) -> T:
        snapshot = ref.get(transaction=transaction)
        data = (snapshot.to_dict() or {}) if snapshot.exists else {}
        failures = [t for t in data.get("failures") or [] if isinstance(t, datetime)]
        answer, keep = decide(failures)
        if keep is not None:
            latest = max(keep, default=bookings._now())
            # expiresAt: a TTL policy deletes the document once nothing in it counts.
            transaction.set(ref, {"failures": keep, "expiresAt": latest + timedelta(hours=2)})
        return answer

    return _transact("count a wrong access code", body, rounds=3)


# --- joining and leaving ----------------------------------------------------------------


def change_membership(
    booking_id: str,
    activity_id: str,
    decide: Callable[[dict[str, Any], dict[str, Any] | None], Change],
) -> Any:
    """One join or leave: ``decide(booking, activity)`` on what is stored, then its writes
    in one batch that commits only if the booking is still as it was read.

    That precondition (the booking's update time) is what makes a seat go exactly once:
    of twenty students writing over one version of the booking, one commits and the
    others read it again and decide again. No lock is held while deciding, so a crowd on
    one class's last seats gets answers, not lock timeouts. The activity is written only
    beside a booking write, so reading it outside the batch is safe. An exception from
    ``decide`` writes nothing and reaches the caller.
    """
    from google.api_core import exceptions
    from google.cloud import firestore

    client = bookings._client()
    ref = bookings._booking_ref(booking_id)
    activity_ref = bookings._activity_ref(activity_id)
    with bookings._store_errors("join or leave the class"):
        for attempt in range(MEMBERSHIP_ATTEMPTS):
            snapshot = ref.get(retry=bookings._read_retry(), timeout=5.0)
            if not snapshot.exists:
                raise InvalidBooking(f"booking {booking_id} was deleted", code="booking_missing")
            activity_snapshot = activity_ref.get(retry=bookings._read_retry(), timeout=5.0)
            activity = activity_snapshot.to_dict() if activity_snapshot.exists else None
            change = decide(snapshot.to_dict() or {}, activity)
            if not change.booking:
                return change.value
            batch = client.batch()
            batch.update(
                ref,
                {**change.booking, "guestsUpdatedAt": firestore.SERVER_TIMESTAMP},
                option=client.write_option(last_update_time=snapshot.update_time),
            )
            if activity is None and change.create_activity is not None:
                batch.create(activity_ref, dict(change.create_activity))
            elif activity is not None and change.update_activity:
                batch.update(
                    activity_ref,
                    dict(change.update_activity),
                    option=client.write_option(last_update_time=activity_snapshot.update_time),
                )
            try:
                batch.commit(timeout=10.0)
            except (exceptions.FailedPrecondition, exceptions.AlreadyExists, exceptions.Aborted):
                # Someone else changed the class first: read it again and decide again.
                retry.sleep(retry.CONTENTION.delay(attempt))
                continue
            return change.value
    raise StoreUnavailable(
        f"the class {booking_id} kept changing while {MEMBERSHIP_ATTEMPTS} joins were tried",
        code="class_contended",
    )


# --- the Calendar side ------------------------------------------------------------------


def claim_guest_sync(booking_id: str, *, owner: str, lease_seconds: float) -> GuestClaim:
    """Take the booking's guest lease when a guest change waits (``guestSyncPending``).

    BookingBusy while another worker holds it: that worker sees the newer change when it
    finishes, and the redelivered message finds nothing left to do.
    """
    ref = bookings._booking_ref(booking_id)

    def body(transaction: Any) -> GuestClaim:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            return GuestClaim("missing", {})
        data = snapshot.to_dict() or {}
        if data.get("guestSyncPending") is not True:
            return GuestClaim("idle", data)
        now = bookings._now()
        if GUEST_LEASE.held_by_another(data, owner, now):
            raise BookingBusy(f"another worker is inviting the guests of {booking_id}")
        transaction.update(ref, GUEST_LEASE.grant(owner, lease_seconds, now))
        return GuestClaim("claimed", data)

    return _transact("claim the guest invitations", body)


def finish_guest_sync(
    booking_id: str,
    *,
    owner: str,
    version: int,
    states: Mapping[str, str],
    reason: str | None = None,
) -> bool:
    """Record what the worker made of the changes up to ``version`` and give the lease back.

    ``states``: guest id -> its new invitation state, written only for guests whose
    entry has not changed since (``change`` <= ``version``). True when no newer change
    arrived (``guestSyncPending`` is cleared); False when one did, or the lease was lost.
    """
    from google.cloud import firestore

    ref = bookings._booking_ref(booking_id)

    def body(transaction: Any) -> bool:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            return True
        data = snapshot.to_dict() or {}
        if not GUEST_LEASE.owned_by(data, owner):
            return False
        invitations = dict(data.get("guestInvitations") or {})
        for guest_id, state in states.items():
            entry = invitations.get(guest_id)
            if isinstance(entry, dict) and int(entry.get("change") or 0) <= version:
                invitations[guest_id] = {**entry, "state": state}
        current = int(data.get("guestChanges") or 0)
        done = current <= version
        updates: dict[str, Any] = {
            "guestInvitations": invitations,
            "guestChangesApplied": version,
            "guestSyncedAt": firestore.SERVER_TIMESTAMP,
            "guestSyncReason": reason or firestore.DELETE_FIELD,
            **GUEST_LEASE.cleared(firestore.DELETE_FIELD),
        }
        if done:
            updates["guestSyncPending"] = False
        transaction.update(ref, updates)
        return done

    return _transact("record the guest invitations", body)


def release_guest_sync(booking_id: str, *, owner: str, reason: str) -> None:
    """Give the guest lease back after a failure; the change stays pending."""
    from google.cloud import firestore

    ref = bookings._booking_ref(booking_id)

    def body(transaction: Any) -> None:
        snapshot = ref.get(transaction=transaction)
        data = (snapshot.to_dict() or {}) if snapshot.exists else {}
        if snapshot.exists and GUEST_LEASE.owned_by(data, owner):
            transaction.update(
                ref, {**GUEST_LEASE.cleared(firestore.DELETE_FIELD), "guestSyncReason": reason}
            )

    _transact("release the guest invitations", body)


def bookings_with_pending_guests(limit: int) -> list[str]:
    """Bookings with a guest change not yet made in Google Calendar (for maintenance)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        bookings._client()
        .collection(bookings.BOOKINGS)
        .where(filter=FieldFilter("guestSyncPending", "==", True))
        .limit(limit)
    )
    now = bookings._now()
    with bookings._store_errors("list pending guest invitations"):
        snapshots = list(query.get(retry=bookings._read_retry(), timeout=10.0))
    return [s.id for s in snapshots if GUEST_LEASE.holder(s.to_dict() or {}, now) is None]
