"""Snapshots of stored events for the renderer, taken under the backend's lock."""

from __future__ import annotations

import copy
from datetime import tzinfo
from typing import Any

from sandbox.calendar import conference, event_rules
from sandbox.calendar.models import Calendar, EventView, Span, StoredEvent


def event_view(
    calendar: Calendar,
    event: StoredEvent,
    viewer: str | None,
    zone: tzinfo,
    *,
    span: Span | None = None,
    consumed: set[str] | None,
    bare_tombstones: str = "never",
) -> EventView:
    """The event as `viewer` sees it now; `consumed` as for `conference.observe`;
    `bare_tombstones` as `CalendarRules.bare_tombstones`."""
    bare = event.cancelled and (
        bare_tombstones == "everyone" or (bare_tombstones == "others" and viewer != calendar.owner)
    )
    return EventView(
        calendar_id=calendar.id,
        calendar_owner=calendar.owner,
        calendar_summary=calendar.summary,
        viewer=viewer,
        id=event.id,
        body=copy.deepcopy(event.body),
        created=event.created,
        updated=event.updated,
        creator=event.creator,
        ical_uid=event.ical_uid,
        sequence=event.sequence,
        change_seq=event.change_seq,
        base=event_rules.base_span(event),
        span=span,
        conference=conference.observe(event, consumed),
        zone=zone,
        bare=bare,
    )


def sandbox_extras(event: StoredEvent) -> dict[str, Any]:
    """What the sandbox knows of an event beyond the resource (GET /_sandbox/events)."""
    meet = event.conference
    return {
        "sendUpdates": copy.deepcopy(event.send_updates_log),
        "changeSeq": event.change_seq,
        "conference": (
            None
            if meet is None
            else {
                "requestId": meet.request_id,
                "outcome": meet.outcome,
                "pendingReadsLeft": meet.pending_left,
                "code": meet.code,
            }
        ),
    }
