"""What an events.list or a freeBusy query selects from a calendar. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sandbox.calendar.event_rules import base_span, instances
from sandbox.calendar.models import Calendar, EntryRef, Span, StoredEvent
from sandbox.core import timeutil


@dataclass(frozen=True)
class ListQuery:
    time_min: datetime | None = None
    time_max: datetime | None = None
    updated_min: datetime | None = None
    single_events: bool = False
    order_by: str | None = None
    show_deleted: bool = False
    q: str | None = None
    private_props: list[tuple[str, str]] = field(default_factory=list)
    shared_props: list[tuple[str, str]] = field(default_factory=list)
    ical_uid: str | None = None


def select(calendar: Calendar, query: ListQuery, since: int | None) -> list[EntryRef]:
    """Every entry of a listing, in order: the whole result before paging.

    `since` (a sync token's change number) makes it incremental: every change
    after it, deletions included, and the other filters do not apply."""
    zone = timeutil.zone(calendar.time_zone)
    chosen: list[tuple[StoredEvent, Span | None]] = []
    for event in sorted(calendar.events.values(), key=lambda e: e.order):
        if since is not None:
            if event.change_seq <= since:
                continue
        else:
            deleted_since = query.updated_min is not None and event.updated >= query.updated_min
            if event.cancelled and not (query.show_deleted or deleted_since):
                continue
            if not matches(event, query):
                continue
        recurring = bool(event.body.get("recurrence"))
        window = (query.time_min, query.time_max) if since is None else (None, None)
        if recurring and query.single_events:
            chosen.extend((event, span) for span in instances(event, calendar, *window))
        elif recurring:
            if since is not None or instances(event, calendar, *window):
                chosen.append((event, None))
        else:
            start, end = base_span(event).bounds(zone)
            if window[0] is not None and end <= window[0]:
                continue
            if window[1] is not None and start >= window[1]:
                continue
            chosen.append((event, None))
    if query.order_by == "startTime":
        chosen.sort(key=lambda pair: (pair[1] or base_span(pair[0])).bounds(zone)[0])
    elif query.order_by == "updated":
        chosen.sort(key=lambda pair: pair[0].updated)
    return [(event.id, span.start if span else None) for event, span in chosen]


def matches(event: StoredEvent, query: ListQuery) -> bool:
    body = event.body
    if query.updated_min is not None and event.updated < query.updated_min:
        return False
    if query.ical_uid is not None and event.ical_uid != query.ical_uid:
        return False
    props = body.get("extendedProperties", {})
    for scope, wanted in (("private", query.private_props), ("shared", query.shared_props)):
        values = props.get(scope, {})
        if any(values.get(key) != value for key, value in wanted):
            return False
    if query.q:
        haystack = " ".join(
            [
                body.get("summary", ""),
                body.get("description", ""),
                body.get("location", ""),
                *(a.get("email", "") for a in body.get("attendees", [])),
                *(a.get("displayName", "") for a in body.get("attendees", [])),
            ]
        ).lower()
        if not all(term in haystack for term in query.q.lower().split()):
            return False
    return True


def busy(
    calendar: Calendar, time_min: datetime, time_max: datetime
) -> list[tuple[datetime, datetime]]:
    """Merged busy periods of opaque, live events, clipped to the window."""
    zone = timeutil.zone(calendar.time_zone)
    periods = []
    for event in calendar.events.values():
        if event.cancelled or event.body.get("transparency") == "transparent":
            continue
        if event.body.get("recurrence"):
            spans = instances(event, calendar, time_min, time_max)
        else:
            spans = [base_span(event)]
        for span in spans:
            start, end = span.bounds(zone)
            if end > time_min and start < time_max:
                periods.append((max(start, time_min), min(end, time_max)))
    periods.sort()
    merged: list[tuple[datetime, datetime]] = []
    for start, end in periods:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
