"""What an events.list or a freeBusy query selects from a calendar. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from sandbox.calendar.event_rules import base_span, instances
from sandbox.calendar.models import (
    Calendar,
    CalendarRules,
    EntryRef,
    PageCursor,
    Span,
    StoredEvent,
)
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


def issues_sync_token(query: ListQuery) -> bool:
    """Whether a full listing ends with a nextSyncToken: not when it used a parameter a
    sync token cannot be combined with, timeMin excepted (Google sends none then)."""
    return not (
        query.time_max
        or query.order_by
        or query.q
        or query.updated_min
        or query.ical_uid
        or query.private_props
        or query.shared_props
    )


def cut_page(
    cursor: PageCursor, max_results: int, rules: CalendarRules
) -> tuple[list[EntryRef], PageCursor | None]:
    """The entries of the page `cursor` points at, and the next page's cursor (None:
    this is the last page). Pages may be short or empty while more follow, as Google
    documents: a listing of several pages always serves its second page empty, and
    `rules` can cap every page and add an empty page at the end."""
    if cursor.empty_due:
        return [], replace(cursor, empty_due=False)
    size = min(max_results, rules.page_cap) if rules.page_cap else max_results
    page = cursor.entries[cursor.offset : cursor.offset + size]
    end = cursor.offset + len(page)
    if end < len(cursor.entries):
        return page, replace(cursor, offset=end, empty_due=cursor.offset == 0)
    if rules.trailing_empty_page and page and not cursor.trailed:
        return page, replace(cursor, offset=end, trailed=True)
    return page, None


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
