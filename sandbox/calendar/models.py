"""What the Calendar backend stores, and the snapshots it hands out for rendering."""

from __future__ import annotations

import base64
import secrets
import string
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from typing import Any

DEFAULT_TIME_ZONE = "America/Argentina/Buenos_Aires"


def new_event_id() -> str:
    """26 base32hex characters, like the ids Calendar generates."""
    return base64.b32hexencode(secrets.token_bytes(20)).decode("ascii").lower()[:26]


def new_meet_code() -> str:
    letters = string.ascii_lowercase
    parts = ("".join(secrets.choice(letters) for _ in range(n)) for n in (3, 4, 3))
    return "-".join(parts)


def instant(value: datetime | date, zone: tzinfo) -> datetime:
    """A datetime as is; a date as its midnight in `zone`."""
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(0), tzinfo=zone)


@dataclass(frozen=True)
class Span:
    """An event occurrence: its start and end (dates for all-day events)."""

    start: datetime | date
    end: datetime | date

    def bounds(self, zone: tzinfo) -> tuple[datetime, datetime]:
        return instant(self.start, zone), instant(self.end, zone)


@dataclass
class ConferenceSettings:
    """How conferences created from now on behave (control endpoint /_sandbox/conference)."""

    # Google's answer to the insert itself may still say `pending` (and the next read
    # `success`): by default one read is pending. 0 makes the insert's answer final.
    pending_reads: int = 1
    outcome: str = "success"


@dataclass
class CalendarRules:
    """How listings, tombstones and channels behave (control endpoint
    /_sandbox/calendar_rules); the defaults are as strict as Google documents."""

    # A page holds at most this many items, whatever maxResults asks (short pages).
    page_cap: int | None = None
    # The last page with items still carries nextPageToken; an empty page follows with
    # the nextSyncToken (Google documents that a page may be empty while more follow).
    trailing_empty_page: bool = False
    # Who sees a deleted event as nothing but id and status: "others" (everyone but the
    # calendar's owner, Google's organiser view), "everyone", or "never" (lenient).
    bare_tombstones: str = "others"
    # How long a stopped channel still receives notifications.
    channel_linger_seconds: float = 1.0


@dataclass
class Conference:
    """A Meet conference being created for an event by a createRequest."""

    request_id: str
    solution_type: str
    outcome: str
    pending_left: int
    code: str


@dataclass
class StoredEvent:
    id: str
    calendar_id: str
    body: dict[str, Any]  # the client-writable fields, as stored
    created: datetime
    updated: datetime
    creator: str | None
    order: int
    change_seq: int
    ical_uid: str
    sequence: int = 0
    conference: Conference | None = None
    send_updates_log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.body.get("status", "confirmed")

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"


@dataclass
class Calendar:
    id: str
    owner: str
    public: bool = False
    time_zone: str = DEFAULT_TIME_ZONE
    summary: str | None = None
    events: dict[str, StoredEvent] = field(default_factory=dict)
    change_seq: int = 0
    next_order: int = 0
    updated: datetime | None = None


@dataclass(frozen=True)
class SyncPoint:
    calendar_id: str
    seq: int


# An entry of a listing: an event id, and for an expanded instance its start.
EntryRef = tuple[str, datetime | date | None]


@dataclass
class PageCursor:
    calendar_id: str
    entries: list[EntryRef]
    offset: int
    sync_seq: int
    sync: bool = True  # the last page carries a nextSyncToken
    empty_due: bool = False  # the page this cursor points at is served empty
    trailed: bool = False  # the trailing empty page is the next one


# --- snapshots for the renderer ---------------------------------------------------


@dataclass(frozen=True)
class ConferenceView:
    """A createRequest conference as one read sees it (`status` already decided)."""

    request_id: str
    solution_type: str
    status: str  # pending, success or failure
    code: str


@dataclass(frozen=True)
class EventView:
    """One event (or one instance of a recurring one) as one caller sees it at one
    moment, copied out from under the backend's lock: the renderer's input."""

    calendar_id: str
    calendar_owner: str
    calendar_summary: str | None
    viewer: str | None  # the caller's email; None for an API key
    id: str  # the stored event's id (the master's, for an instance)
    body: dict[str, Any]  # a private copy of the stored body
    created: datetime
    updated: datetime
    creator: str | None
    ical_uid: str
    sequence: int
    change_seq: int
    base: Span  # the stored start/end
    span: Span | None  # set: this view is one instance of a recurring event
    conference: ConferenceView | None  # a createRequest conference; else body's conferenceData
    zone: tzinfo  # the zone times are written in (the request's timeZone or the calendar's)
    bare: bool = False  # a tombstone shown as nothing but its id and status

    @property
    def status(self) -> str:
        return self.body.get("status", "confirmed")


@dataclass(frozen=True)
class EventPage:
    """One page of an events.list answer."""

    calendar_id: str
    summary: str
    updated: datetime
    change_seq: int
    time_zone: str  # as asked for, or the calendar's
    owner_view: bool  # the caller owns the calendar
    items: list[EventView]
    next_page_token: str | None
    next_sync_token: str | None


@dataclass(frozen=True)
class BusyResult:
    """freeBusy for one asked calendar: merged busy periods, or not found."""

    found: bool
    busy: list[tuple[datetime, datetime]]
