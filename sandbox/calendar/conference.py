"""Meet conferences: how conferenceData sent with conferenceDataVersion=1 is stored,
and how a conference being created answers reads (pending for a few, then its outcome)."""

from __future__ import annotations

import copy
from typing import Any

from sandbox.calendar.errors import CalendarError
from sandbox.calendar.models import (
    Conference,
    ConferenceSettings,
    ConferenceView,
    StoredEvent,
    new_meet_code,
)


def apply(event: StoredEvent, data: dict[str, Any] | None, settings: ConferenceSettings) -> None:
    """conferenceData as sent with conferenceDataVersion=1 (None: the event has none)."""
    if data is None:
        event.conference = None
        event.body.pop("conferenceData", None)
        return
    create = data.get("createRequest")
    if create:
        request_id = create.get("requestId")
        if not request_id:
            raise CalendarError(400, "invalid", "Invalid conference create request: no requestId.")
        if event.conference is not None and event.conference.request_id == request_id:
            return  # a repeated requestId is ignored, as Google does
        solution = (create.get("conferenceSolutionKey") or {}).get("type")
        if solution != "hangoutsMeet":
            raise CalendarError(400, "invalid", "Invalid conference type value.")
        event.conference = Conference(
            request_id=request_id,
            solution_type=solution,
            outcome=settings.outcome,
            pending_left=settings.pending_reads,
            code=new_meet_code(),
        )
        event.body.pop("conferenceData", None)
        return
    current = event.conference
    if current is not None and data.get("conferenceId") == current.code:
        return  # the client echoed the conference it already has
    # Copied conference data (no createRequest) is stored as given.
    event.conference = None
    event.body["conferenceData"] = copy.deepcopy(data)


def observe(event: StoredEvent, consumed: set[str] | None) -> ConferenceView | None:
    """The event's createRequest conference as this read sees it.

    A pending conference stays pending for `pending_reads` responses: `consumed`
    collects the events already counted in this response, so that several
    instances of one event in a page count once (None: a sandbox-internal look
    that must not count)."""
    conference = event.conference
    if conference is None:
        return None
    if conference.pending_left > 0:
        status = "pending"
        if consumed is not None and event.id not in consumed:
            consumed.add(event.id)
            conference.pending_left -= 1
    else:
        status = conference.outcome
    return ConferenceView(conference.request_id, conference.solution_type, status, conference.code)
