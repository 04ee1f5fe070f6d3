"""Group classes: a student joins a scheduled ``grupal`` class with its access code, or leaves it.

The rules, on plain values: who the student is (the ``users`` document with the id
token's verified email), which class a code opens (trimmed, upper-cased), when a seat
may be taken (``grupal``, ``scheduled``, not started, ``currentParticipants <
maxParticipants``), and how many wrong codes a user may try (``MAX_WRONG_CODES`` an
hour). The seat is taken by one write of the booking and the guest's activity that
commits only over the booking's version it was decided on
(``shared.stores.group_classes.change_membership``), so it is taken exactly once.

A join or leave changes nothing in Google Calendar here: it records the guest's wanted
invitation on the booking (``guestInvitations``, ``guestSyncPending``) and nudges the
``GUEST_CHANGES_TOPIC``; ``shared.domain.guest_invitations`` (a private function, and
maintenance) makes the change in Google with the school's token, which this code path
never holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core.config import get_config
from shared.core.errors import InvalidBooking
from shared.core.logs import get_logger
from shared.domain import event_shape
from shared.google import oauth, pubsub
from shared.stores import bookings, group_classes

log = get_logger(__name__)

GROUP = "grupal"
GUEST_ROLE = event_shape.GUEST_TYPE
MAX_CODE_LENGTH = 64
MAX_WRONG_CODES = 10
WRONG_CODE_WINDOW = timedelta(hours=1)

# Invitation states on the booking (guestInvitations.<guest id>.state).
WAITING = "waiting"  # to be invited in Google Calendar
INVITED = "invited"
REMOVING = "removing"  # left; to be removed from the event
REMOVED = "removed"

JOINED = "joined"
LEFT = "left"


class Refused(Exception):
    """The request cannot be granted; ``reason`` is a stable code the web layer answers
    with (``unauthenticated``, ``email_not_verified``, ``unknown_user``, ``unknown_code``,
    ``too_many_attempts``, ``full``, ``started``, ``cancelled``, ``not_group``, ``host``)."""

    def __init__(self, reason: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Membership:
    """The answer to a join or leave: the class as the student may see it."""

    class_id: str
    start: datetime
    end: datetime
    meet_link: str | None
    current: int
    maximum: int
    changed: bool

    def body(self) -> dict[str, Any]:
        return {
            "classId": self.class_id,
            "startTime": self.start.isoformat().replace("+00:00", "Z"),
            "endTime": self.end.isoformat().replace("+00:00", "Z"),
            "htmlLink": self.meet_link,
            "currentParticipants": self.current,
            "maxParticipants": self.maximum,
        }


# --- pure rules ---------------------------------------------------------------------


def normalize_code(code: str) -> str:
    return code.strip().upper()


def _participants(data: Mapping[str, Any]) -> list[str]:
    return [g for g in data.get("participantsIds") or [] if isinstance(g, str)]


def _count(data: Mapping[str, Any]) -> int:
    current = data.get("currentParticipants")
    if isinstance(current, int) and not isinstance(current, bool) and current >= 1:
        return current
    return 1 + len(_participants(data))


def _maximum(data: Mapping[str, Any]) -> int:
    value = data.get("maxParticipants")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def membership(booking_id: str, data: Mapping[str, Any], *, changed: bool) -> Membership:
    start, end = event_shape.booking_times(data)
    link = data.get("htmlLink")
    return Membership(
        booking_id,
        start,
        end,
        link if isinstance(link, str) else None,
        _count(data),
        _maximum(data),
        changed,
    )


def _check_open(data: Mapping[str, Any]) -> None:
    if data.get("status") == bookings.CANCELLED:
        raise Refused("cancelled", "the class was cancelled")
    if data.get("classType") != GROUP:
        raise Refused("not_group", "the class is not a group class")


def decide_join(booking_id: str, user_id: str, email: str, now: datetime) -> Any:
    """The rule of a join, for ``change_membership``: take a seat or say why not."""

    def decide(data: dict[str, Any], activity: dict[str, Any] | None) -> group_classes.Change:
        _check_open(data)
        guests = _participants(data)
        if data.get("bookedById") == user_id or user_id in guests:
            return group_classes.Change(membership(booking_id, data, changed=False))
        start, _ = event_shape.booking_times(data)
        if data.get("status") != bookings.SCHEDULED or start <= now:
            raise Refused("started", "the class has started")
        current, maximum = _count(data), _maximum(data)
        if current >= maximum:
            raise Refused("full", "the class is full")
        change_number = int(data.get("guestChanges") or 0) + 1
        invitations = dict(data.get("guestInvitations") or {})
        invitations[user_id] = {
            "email": email,
            "state": WAITING,
            "change": change_number,
            "changedAt": now,
        }
        updates = {
            "participantsIds": [*guests, user_id],
            "currentParticipants": current + 1,
            "guestInvitations": invitations,
            "guestChanges": change_number,
            "guestSyncPending": True,
        }
        record = {
            "userId": user_id,
            "classId": booking_id,
            "taskId": None,
            "rol": GUEST_ROLE,
            "completed": False,
            "status": JOINED,
            "joinedAt": now,
        }
        return group_classes.Change(
            membership(booking_id, {**data, **updates}, changed=True),
            booking=updates,
            create_activity=record,
            update_activity={"status": JOINED, "joinedAt": now},
        )

    return decide


def decide_leave(booking_id: str, user_id: str, now: datetime) -> Any:
    """The rule of a leave: give the seat back; idempotent; never the host's."""

    def decide(data: dict[str, Any], activity: dict[str, Any] | None) -> group_classes.Change:
        if data.get("bookedById") == user_id:
            raise Refused("host", "the host cannot leave their own class; cancel it instead")
        guests = _participants(data)
        if user_id not in guests:
            return group_classes.Change(membership(booking_id, data, changed=False))
        _check_open(data)
        start, _ = event_shape.booking_times(data)
        if data.get("status") != bookings.SCHEDULED or start <= now:
            raise Refused("started", "the class has started")
        change_number = int(data.get("guestChanges") or 0) + 1
        invitations = dict(data.get("guestInvitations") or {})
        entry = invitations.get(user_id) if isinstance(invitations.get(user_id), dict) else {}
        invitations[user_id] = {
            **(entry or {}),
            "state": REMOVING,
            "change": change_number,
            "changedAt": now,
        }
        updates = {
            "participantsIds": [g for g in guests if g != user_id],
            "currentParticipants": max(1, _count(data) - 1),
            "guestInvitations": invitations,
            "guestChanges": change_number,
            "guestSyncPending": True,
        }
        return group_classes.Change(
            membership(booking_id, {**data, **updates}, changed=True),
            booking=updates,
            update_activity={"status": LEFT, "leftAt": now} if activity is not None else None,
        )

    return decide


def wrong_code_rule(now: datetime, *, wrong: bool) -> Any:
    """For ``record_guess``: 429 after MAX_WRONG_CODES wrong codes within the window;
    otherwise a wrong code is counted."""

    def decide(failures: list[datetime]) -> tuple[int | None, list[datetime] | None]:
        recent = sorted(t for t in failures if t > now - WRONG_CODE_WINDOW)
        if len(recent) >= MAX_WRONG_CODES:
            oldest = recent[-MAX_WRONG_CODES]
            wait = (oldest + WRONG_CODE_WINDOW - now).total_seconds()
            return max(1, math.ceil(wait)), None
        if not wrong:
            return None, None
        return None, [*recent, now][-MAX_WRONG_CODES:]

    return decide


def email_spellings(email: str) -> list[str]:
    """Spellings of an address to look up, at most 30 (Firestore compares exactly, and an
    ``in`` filter takes 30 values): the local part and the domain each as given, lower,
    upper, capitalised and title-cased. The match itself then ignores case; an address
    stored in another mix of cases (``aNa@...``) is not found."""
    local, _, domain = email.partition("@")

    def forms(part: str) -> list[str]:
        return list(
            dict.fromkeys([part, part.lower(), part.upper(), part.capitalize(), part.title()])
        )

    spellings = [email] + [f"{a}@{b}" for a in forms(local) for b in forms(domain)]
    return list(dict.fromkeys(spellings))[:30]


# --- the requests -------------------------------------------------------------------


def student(id_token: str) -> tuple[str, str]:
    """The (user id, email) of the id token's verified Google account."""
    config = get_config()
    try:
        claims = oauth.verify_id_token(config, id_token)
    except oauth.InvalidIdToken:
        raise Refused("unauthenticated", "the ID token is not valid") from None
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or len(email) > 254:
        raise Refused("email_not_verified", "the ID token carries no email address")
    if claims.get("email_verified") not in (True, "true"):
        raise Refused("email_not_verified", "Google has not verified this email address")
    found = [
        (uid, data)
        for uid, data in group_classes.users_with_email(email_spellings(email))
        if isinstance(data.get("email"), str) and data["email"].casefold() == email.casefold()
    ]
    if len(found) != 1:
        if found:
            log.error("several users have one email; refusing", extra={"users": len(found)})
        raise Refused("unknown_user", "no student of the school has this email address")
    return found[0][0], email


def _find_class(user_id: str, code: str, now: datetime) -> str:
    """The class a code opens, counting a wrong code against the user."""
    normalized = normalize_code(code)
    matches = (
        group_classes.bookings_with_access_code(normalized)
        if 0 < len(normalized) <= MAX_CODE_LENGTH
        else []
    )
    if len(matches) > 1:
        log.error("two classes share an access code", extra={"bookings": [m[0] for m in matches]})
    wrong = len(matches) != 1
    retry_after = group_classes.record_guess(user_id, wrong_code_rule(now, wrong=wrong))
    if retry_after is not None:
        raise Refused(
            "too_many_attempts", "too many wrong access codes; try again later", retry_after
        )
    if wrong:
        raise Refused("unknown_code", "no class has this access code")
    return matches[0][0]


def join(id_token: str, code: str) -> Membership:
    """The student behind ``id_token`` takes a seat in the class ``code`` opens."""
    user_id, email = student(id_token)
    now = datetime.now(UTC)
    booking_id = _find_class(user_id, code, now)
    result = _change(
        booking_id,
        user_id,
        decide_join(booking_id, user_id, email, now),
    )
    if result.changed:
        log.info(
            "guest joined a group class",
            extra={"booking_id": booking_id, "outcome": "joined", "participants": result.current},
        )
        nudge(booking_id)
    return result


def leave(id_token: str, code: str) -> Membership:
    """The student behind ``id_token`` gives their seat in the class back."""
    user_id, _ = student(id_token)
    now = datetime.now(UTC)
    booking_id = _find_class(user_id, code, now)
    result = _change(booking_id, user_id, decide_leave(booking_id, user_id, now))
    if result.changed:
        log.info(
            "guest left a group class",
            extra={"booking_id": booking_id, "outcome": "left", "participants": result.current},
        )
        nudge(booking_id)
    return result


def _change(booking_id: str, user_id: str, decide: Any) -> Membership:
    try:
        return group_classes.change_membership(
            booking_id, event_shape.guest_activity_id_for(booking_id, user_id), decide
        )
    except InvalidBooking as error:
        # A class whose times cannot be read cannot be joined; a person must look.
        log.error(
            f"group class cannot be joined: {error.message}",
            extra={"booking_id": booking_id, "reason": error.code},
        )
        raise Refused("started", "the class cannot be joined") from None


def nudge(booking_id: str) -> None:
    """Ask the private function to make the change in Google now (best effort: a lost
    nudge is made up by maintenance, which looks for ``guestSyncPending`` bookings)."""
    topic = get_config().guest_changes_topic
    if not topic:
        return
    try:
        pubsub.publish(topic, json.dumps({"bookingId": booking_id}).encode())
    except Exception as error:
        log.warning(
            "could not publish the guest change; maintenance will pick it up",
            extra={"booking_id": booking_id, "reason": type(error).__name__},
        )
