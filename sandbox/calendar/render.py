"""Calendar resources as Google writes them, from the backend's snapshots.

Pure functions: every input is a snapshot (`EventView`, `EventPage`, ...) the backend
copied out under its lock, so rendering needs no lock and changes nothing.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Any

from sandbox.calendar.event_rules import instance_id
from sandbox.calendar.models import BusyResult, ConferenceView, EventPage, EventView
from sandbox.calendar.notifications import Channel
from sandbox.core import timeutil
from sandbox.core.signing import b64url

DEFAULT_REMINDERS = [{"method": "popup", "minutes": 10}]
MEET_ICON = (
    "https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/web-512dp/"
    "logo_meet_2020q4_color_2x_web_512dp.png"
)


def _etag(view: EventView) -> str:
    return f'"{int(view.updated.timestamp() * 1_000_000)}{view.change_seq % 1000:03d}"'


def _html_link(event_id: str, calendar_id: str) -> str:
    eid = b64url(f"{event_id} {calendar_id}".encode())
    return f"https://www.google.com/calendar/event?eid={eid}"


def _person(email: str, viewer: str | None, display_name: str | None = None) -> dict[str, Any]:
    person: dict[str, Any] = {"email": email}
    if display_name:
        person["displayName"] = display_name
    if viewer is not None and viewer == email:
        person["self"] = True
    return person


def _time(raw: dict[str, Any], value: datetime | date, zone: tzinfo) -> dict[str, Any]:
    if isinstance(value, datetime):
        rendered: dict[str, Any] = {"dateTime": timeutil.format_event_time(value, zone)}
        if raw.get("timeZone"):
            rendered["timeZone"] = raw["timeZone"]
        return rendered
    return {"date": value.isoformat()}


def event(view: EventView) -> dict[str, Any]:
    """The Event resource; one instance of a recurring event when `view.span` is set."""
    body = view.body
    zone = view.zone
    span = view.span
    occurrence = span or view.base
    event_id = instance_id(view.id, occurrence.start) if span else view.id
    if view.bare:
        # "Deleted events are only guaranteed to have the id field populated."
        bare = {"kind": "calendar#event", "etag": _etag(view), "id": event_id}
        return {**bare, "status": view.status}
    out: dict[str, Any] = {
        "kind": "calendar#event",
        "etag": _etag(view),
        "id": event_id,
        "status": view.status,
        "htmlLink": _html_link(event_id, view.calendar_id),
        "created": timeutil.format_timestamp(view.created),
        "updated": timeutil.format_timestamp(view.updated),
    }
    for name in ("summary", "description", "location", "colorId"):
        if name in body:
            out[name] = body[name]
    out["creator"] = _person(view.creator or view.calendar_owner, view.viewer)
    organizer_name = view.calendar_summary if view.calendar_id != view.calendar_owner else None
    out["organizer"] = _person(view.calendar_id, view.viewer, organizer_name)
    if view.calendar_owner == view.viewer:
        out["organizer"]["self"] = True
    out["start"] = _time(body["start"], occurrence.start, zone)
    out["end"] = _time(body["end"], occurrence.end, zone)
    if span is None and "recurrence" in body:
        out["recurrence"] = list(body["recurrence"])
    if span is not None:
        out["recurringEventId"] = view.id
        out["originalStartTime"] = _time(body["start"], span.start, zone)
    for name in ("transparency", "visibility", "endTimeUnspecified"):
        if name in body:
            out[name] = body[name]
    out["iCalUID"] = view.ical_uid
    out["sequence"] = view.sequence
    if body.get("attendees"):
        out["attendees"] = [_attendee(a, view) for a in body["attendees"]]
    for name in (
        "extendedProperties",
        "source",
        "guestsCanInviteOthers",
        "guestsCanModify",
        "guestsCanSeeOtherGuests",
        "anyoneCanAddSelf",
    ):
        if name in body:
            out[name] = body[name]
    conference, hangout_link = _conference(view)
    if hangout_link:
        out["hangoutLink"] = hangout_link
    if conference is not None:
        out["conferenceData"] = conference
    out["reminders"] = body.get("reminders", {"useDefault": True})
    out["eventType"] = "default"
    return out


def _attendee(attendee: dict[str, Any], view: EventView) -> dict[str, Any]:
    rendered = dict(attendee)
    if attendee["email"] == view.calendar_id:
        rendered["organizer"] = True
    if view.viewer is not None and attendee["email"] == view.viewer:
        rendered["self"] = True
    return rendered


def _conference(view: EventView) -> tuple[dict[str, Any] | None, str | None]:
    """conferenceData and hangoutLink."""
    if view.conference is None:
        raw = view.body.get("conferenceData")
        if raw is None:
            return None, None
        video = [e for e in raw.get("entryPoints", []) if e.get("entryPointType") == "video"]
        return raw, (video[0].get("uri") if video else None)
    return meet_conference(view.conference)


def meet_conference(conference: ConferenceView) -> tuple[dict[str, Any], str | None]:
    data: dict[str, Any] = {
        "createRequest": {
            "requestId": conference.request_id,
            "conferenceSolutionKey": {"type": conference.solution_type},
            "status": {"statusCode": conference.status},
        }
    }
    if conference.status != "success":
        return data, None
    uri = f"https://meet.google.com/{conference.code}"
    data["entryPoints"] = [
        {"entryPointType": "video", "uri": uri, "label": f"meet.google.com/{conference.code}"}
    ]
    data["conferenceSolution"] = {
        "key": {"type": conference.solution_type},
        "name": "Google Meet",
        "iconUri": MEET_ICON,
    }
    data["conferenceId"] = conference.code
    return data, uri


def event_list(page: EventPage) -> dict[str, Any]:
    result: dict[str, Any] = {
        "kind": "calendar#events",
        "etag": f'"p{page.change_seq:016d}"',
        "summary": page.summary,
        "updated": timeutil.format_timestamp(page.updated),
        "timeZone": page.time_zone,
        "accessRole": "owner" if page.owner_view else "reader",
        "defaultReminders": [dict(r) for r in DEFAULT_REMINDERS] if page.owner_view else [],
    }
    if page.next_page_token is not None:
        result["nextPageToken"] = page.next_page_token
    if page.next_sync_token is not None:
        result["nextSyncToken"] = page.next_sync_token
    result["items"] = [event(view) for view in page.items]
    return result


def freebusy(
    time_min: datetime, time_max: datetime, zone: tzinfo, results: dict[str, BusyResult]
) -> dict[str, Any]:
    calendars: dict[str, Any] = {}
    for calendar_id, result in results.items():
        if not result.found:
            calendars[calendar_id] = {
                "errors": [{"domain": "global", "reason": "notFound"}],
                "busy": [],
            }
            continue
        calendars[calendar_id] = {
            "busy": [
                {
                    "start": timeutil.format_event_time(start, zone),
                    "end": timeutil.format_event_time(end, zone),
                }
                for start, end in result.busy
            ]
        }
    return {
        "kind": "calendar#freeBusy",
        "timeMin": timeutil.format_timestamp(time_min),
        "timeMax": timeutil.format_timestamp(time_max),
        "calendars": calendars,
    }


def channel(channel: Channel) -> dict[str, Any]:
    result: dict[str, Any] = {
        "kind": "api#channel",
        "id": channel.id,
        "resourceId": channel.resource_id,
        "resourceUri": channel.resource_uri,
        "expiration": str(timeutil.to_millis(channel.expiration)),
    }
    if channel.token is not None:
        result["token"] = channel.token
    return result
