"""Guests of a group class become attendees of its Calendar event, and stop being so.

A join or leave (``shared.domain.group_classes``) only records what is wanted on the
booking: each guest's entry in ``guestInvitations`` is ``waiting`` (to invite) or
``removing``, and ``guestSyncPending`` is set. ``sync_guests`` makes Google match, with
the school's token, from the private ``guest_invitations`` function (nudged over Pub/Sub)
and from maintenance (which finds what a lost nudge left):

- one worker per class at a time (the booking's guest lease);
- the event is read and only its ``attendees`` are patched, adding the waiting guests
  and taking out those leaving, every other attendee (the host) as Google had it, the
  conference untouched; ``SEND_UPDATES`` makes Google email the invitation;
- what is done is decided from the event as it is now, so a retry after a failure, or
  after an answer lost on the way, finds the guest already there and patches nothing:
  each guest is invited once; and a join quickly followed by a leave ends with the
  guest not invited, whatever order the messages come in;
- the worker finishes only if no change arrived meanwhile; otherwise it takes another pass.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from shared.core.config import get_config
from shared.core.errors import ClasscalError, NotFound, TransientError
from shared.core.logs import get_logger
from shared.domain import group_classes as rules
from shared.google import calendar
from shared.stores import bookings, group_classes

log = get_logger(__name__)

MAX_PASSES = 5


def plan(data: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(guest id -> email to invite, guest id -> email to remove) from the booking."""
    invite: dict[str, str] = {}
    remove: dict[str, str] = {}
    entries = (data.get("guestInvitations") or {}).items()
    # In the order the guests changed: who joined first is invited first.
    ordered = sorted(entries, key=lambda item: _change_number(item[1]))
    for guest_id, entry in ordered:
        if not isinstance(entry, dict) or not isinstance(entry.get("email"), str):
            continue
        if entry.get("state") == rules.WAITING:
            invite[guest_id] = entry["email"]
        elif entry.get("state") == rules.REMOVING:
            remove[guest_id] = entry["email"]
    return invite, remove


def _change_number(entry: Any) -> int:
    value = entry.get("change") if isinstance(entry, dict) else None
    return value if isinstance(value, int) else 0


def attendees_after(
    attendees: list[dict[str, Any]], invite: Mapping[str, str], remove: Mapping[str, str]
) -> list[dict[str, Any]] | None:
    """The event's attendee list with the guests added and removed; None if unchanged.

    An address another guest still wants (the same person twice) is not removed.
    """
    keep = {e.casefold() for e in invite.values()}
    drop = {e.casefold() for e in remove.values()} - keep
    present = {str(a.get("email", "")).casefold() for a in attendees}
    result = [a for a in attendees if str(a.get("email", "")).casefold() not in drop]
    for email in dict.fromkeys(invite.values()):
        if email.casefold() not in present:
            result.append({"email": email})
            present.add(email.casefold())
    return None if result == attendees else result


def sync_guests(booking_id: str) -> dict[str, Any]:
    """Make the class's Calendar event match its guests; returns fields for a log line.

    Raises TransientError (Pub/Sub redelivers; the change stays pending for
    maintenance) when Google or Firestore cannot do it now, BookingBusy while another
    worker holds the class.
    """
    config = get_config()
    owner = uuid.uuid4().hex
    fields: dict[str, Any] = {"booking_id": booking_id, "invited": 0, "removed": 0}
    with calendar.count_calls() as calls:
        for passes in range(1, MAX_PASSES + 1):
            claim = group_classes.claim_guest_sync(
                booking_id, owner=owner, lease_seconds=config.scheduling_lease_seconds
            )
            if claim.state != "claimed":
                return {**fields, "outcome": claim.state, "passes": passes, "calls": dict(calls)}
            try:
                done = _pass(booking_id, owner, claim.data, config.send_updates, fields)
            except ClasscalError as error:
                group_classes.release_guest_sync(booking_id, owner=owner, reason=error.code)
                raise
            except Exception:
                group_classes.release_guest_sync(booking_id, owner=owner, reason="unexpected_error")
                raise
            if done:
                return {**fields, "outcome": "synced", "passes": passes, "calls": dict(calls)}
    raise TransientError(
        f"the guests of {booking_id} kept changing; retried", code="guests_changing"
    )


def _pass(
    booking_id: str, owner: str, data: Mapping[str, Any], send_updates: str, fields: dict[str, Any]
) -> bool:
    version = int(data.get("guestChanges") or 0)
    invite, remove = plan(data)
    event_id = data.get("googleEventId")
    if data.get("status") != bookings.SCHEDULED or not isinstance(event_id, str) or not event_id:
        # Cancelled (its event and invitations went with it) or not scheduled yet.
        return group_classes.finish_guest_sync(
            booking_id, owner=owner, version=version, states={}, reason="not_scheduled"
        )
    try:
        event = calendar.get_event(event_id)
    except NotFound:
        log.error(
            "a group class's Calendar event does not exist; guests not invited",
            extra={"booking_id": booking_id, "event_id": event_id},
        )
        return group_classes.finish_guest_sync(
            booking_id, owner=owner, version=version, states={}, reason="event_not_found"
        )
    if event.get("status") == "cancelled":
        # Deleted in Google Calendar: the calendar sync cancels the booking.
        return group_classes.finish_guest_sync(
            booking_id, owner=owner, version=version, states={}, reason="event_deleted"
        )
    attendees = [a for a in event.get("attendees") or [] if isinstance(a, dict)]
    changed = attendees_after(attendees, invite, remove)
    if changed is not None:
        calendar.patch_event(event_id, {"attendees": changed}, send_updates=send_updates)
        before = {str(a.get("email", "")).casefold() for a in attendees}
        after = {str(a.get("email", "")).casefold() for a in changed}
        fields["invited"] += len(after - before)
        fields["removed"] += len(before - after)
    states = {g: rules.INVITED for g in invite} | {g: rules.REMOVED for g in remove}
    done = group_classes.finish_guest_sync(booking_id, owner=owner, version=version, states=states)
    log.info(
        "group class guests in step with Google Calendar"
        if done
        else "guests changed meanwhile; another pass",
        extra={"booking_id": booking_id, "event_id": event_id, "outcome": "synced"},
    )
    return done
