"""Google Calendar v3: events insert/get/list/patch/update/delete/watch, freeBusy and
channels.stop, under /calendar/v3/."""

from __future__ import annotations

import copy
import re
import secrets
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from sandbox import recurrence, timeutil
from sandbox.errors import CalendarError, bad_request, not_found
from sandbox.notifications import Channel, is_loopback_url
from sandbox.routing import Reply, RequestContext, Route, route
from sandbox.signing import b64url
from sandbox.state import (
    Calendar,
    Conference,
    EntryRef,
    PageCursor,
    State,
    StoredEvent,
    new_event_id,
    new_meet_code,
)

if TYPE_CHECKING:
    from sandbox.server import Sandbox

_SCOPE = "https://www.googleapis.com/auth/calendar"
WRITE_SCOPES = frozenset({_SCOPE, f"{_SCOPE}.events"})
READ_SCOPES = WRITE_SCOPES | {f"{_SCOPE}.readonly", f"{_SCOPE}.events.readonly"}
FREEBUSY_SCOPES = READ_SCOPES | {f"{_SCOPE}.freebusy"}

DEFAULT_MAX_RESULTS = 250
MAX_MAX_RESULTS = 2500
CHANNEL_TTL = timedelta(days=7)
DEFAULT_REMINDERS = [{"method": "popup", "minutes": 10}]
MEET_ICON = (
    "https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/web-512dp/"
    "logo_meet_2020q4_color_2x_web_512dp.png"
)

# Fields a client may set on insert/update/patch; everything else in the body
# (kind, etag, htmlLink, created, organizer, ...) is read-only and ignored.
WRITABLE_FIELDS = (
    "summary",
    "description",
    "location",
    "colorId",
    "start",
    "end",
    "endTimeUnspecified",
    "recurrence",
    "transparency",
    "visibility",
    "attendees",
    "extendedProperties",
    "reminders",
    "source",
    "status",
    "guestsCanInviteOthers",
    "guestsCanModify",
    "guestsCanSeeOtherGuests",
    "anyoneCanAddSelf",
)
_ENUMS = {
    "status": ("confirmed", "tentative", "cancelled"),
    "transparency": ("opaque", "transparent"),
    "visibility": ("default", "public", "private", "confidential"),
}
_RESPONSE_STATUSES = ("needsAction", "declined", "tentative", "accepted")
_SEND_UPDATES = ("all", "externalOnly", "none")
_EVENT_ID_RE = re.compile(r"^[0-9a-v]{5,1024}$")
_INSTANCE_ID_RE = re.compile(r"^(?P<base>[0-9a-v]{5,1024})_(?P<start>\d{8}(?:T\d{6}Z)?)$")
_CHANNEL_ID_RE = re.compile(r"^[A-Za-z0-9\-_+/=]{1,64}$")
_SYNC_INCOMPATIBLE = (
    "timeMin",
    "timeMax",
    "orderBy",
    "q",
    "updatedMin",
    "iCalUID",
    "privateExtendedProperty",
    "sharedExtendedProperty",
)

P = "/calendar/v3"
_CAL = r"(?P<calendar_id>[^/]+)"
_EV = r"(?P<event_id>[^/]+)"


def routes() -> list[Route]:
    events = f"{P}/calendars/{_CAL}/events"
    return [
        route("POST", f"{events}/watch", "calendar.events.watch", "calendar", watch),
        route("POST", events, "calendar.events.insert", "calendar", insert),
        route("GET", events, "calendar.events.list", "calendar", list_events),
        route("GET", f"{events}/{_EV}", "calendar.events.get", "calendar", get),
        route("PATCH", f"{events}/{_EV}", "calendar.events.patch", "calendar", patch),
        route("PUT", f"{events}/{_EV}", "calendar.events.update", "calendar", update),
        route("DELETE", f"{events}/{_EV}", "calendar.events.delete", "calendar", delete),
        route("POST", f"{P}/freeBusy", "calendar.freebusy.query", "calendar", freebusy),
        route("POST", f"{P}/channels/stop", "calendar.channels.stop", "calendar", stop_channel),
    ]


# --- who is calling ----------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    email: str | None  # None: an API key, no user
    scopes: frozenset[str]


def authenticate(ctx: RequestContext) -> Caller:
    header = ctx.request.headers.get("Authorization")
    state = ctx.sandbox.state
    if header:
        scheme, _, token = header.partition(" ")
        with state.lock:
            access = state.access_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            grant = state.grants.get(access.grant_id) if access else None
        if access is None or grant is None or grant.revoked or timeutil.now() >= access.expires_at:
            raise _auth_error("Invalid Credentials")
        return Caller(access.email, access.scopes)
    if ctx.request.args.get("key"):
        return Caller(None, frozenset())
    raise _auth_error("Login Required.")


def _auth_error(message: str) -> CalendarError:
    return CalendarError(
        401,
        "authError",
        message,
        location_type="header",
        location="Authorization",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )


def _require(caller: Caller, allowed: frozenset[str], *, needs_user: bool) -> None:
    if caller.email is None:
        if needs_user:
            raise _auth_error("Login Required.")
        return
    if not caller.scopes & allowed:
        raise CalendarError(
            403,
            "insufficientPermissions",
            "Insufficient Permission",
            top_message="Request had insufficient authentication scopes.",
        )


def _readable_calendar(state: State, caller: Caller, calendar_id: str) -> Calendar:
    if calendar_id == "primary":
        if caller.email is None:
            raise not_found()
        calendar_id = caller.email
    calendar = state.calendar_for(calendar_id, create_owner=caller.email)
    if calendar is None:
        raise not_found()
    if calendar.public or (caller.email is not None and calendar.owner == caller.email):
        return calendar
    raise not_found()


def _writable_calendar(state: State, caller: Caller, calendar_id: str) -> Calendar:
    calendar = _readable_calendar(state, caller, calendar_id)
    if calendar.owner != caller.email:
        raise CalendarError(
            403, "requiredAccessLevel", "You need to have writer access to this calendar."
        )
    return calendar


# --- request parsing ------------------------------------------------------


def _parse_error(message: str) -> CalendarError:
    return CalendarError(400, "parseError", message)


def _bool_arg(ctx: RequestContext, name: str) -> bool:
    value = ctx.request.args.get(name)
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise bad_request("invalid", f"Invalid boolean value for {name}: {value}", name)
    return value.lower() == "true"


def _int_arg(ctx: RequestContext, name: str, default: int) -> int:
    value = ctx.request.args.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise bad_request("invalid", f"Invalid integer value for {name}: {value}", name) from exc


def _time_arg(ctx: RequestContext, name: str) -> datetime | None:
    value = ctx.request.args.get(name)
    if value is None:
        return None
    try:
        return timeutil.parse_rfc3339(value)
    except ValueError as exc:
        raise bad_request("badRequest", "Bad Request", name) from exc


def _zone_arg(ctx: RequestContext, calendar: Calendar) -> tzinfo:
    name = ctx.request.args.get("timeZone") or calendar.time_zone
    try:
        return timeutil.zone(name)
    except ValueError as exc:
        raise bad_request("invalid", f"Invalid time zone: {name}", "timeZone") from exc


def _send_updates(ctx: RequestContext) -> str | None:
    value = ctx.request.args.get("sendUpdates")
    if value is not None:
        if value not in _SEND_UPDATES:
            raise bad_request("invalid", f"Invalid value for sendUpdates: {value}", "sendUpdates")
        return value
    legacy = ctx.request.args.get("sendNotifications")
    if legacy is not None:
        return "all" if legacy.lower() == "true" else "none"
    return None


def _record_send_updates(
    sandbox: Sandbox, event: StoredEvent, method_id: str, value: str | None
) -> None:
    # No mail is sent; the log lets tests and demos see who would have been told.
    event.send_updates_log.append(
        {
            "method": method_id,
            "sendUpdates": value,
            "attendees": [a.get("email") for a in event.body.get("attendees", [])],
            "at": timeutil.format_timestamp(timeutil.now()),
        }
    )
    sandbox.state.stats.send_updates[value or "unset"] += 1


def _conference_version(ctx: RequestContext) -> int:
    version = _int_arg(ctx, "conferenceDataVersion", 0)
    if version not in (0, 1):
        raise bad_request(
            "invalid", f"Invalid conferenceDataVersion: {version}", "conferenceDataVersion"
        )
    return version


# --- event validation -----------------------------------------------------


def _check_types(sandbox: Sandbox, body: dict[str, Any]) -> None:
    for violation in sandbox.calendar_schema.validate(body, "Event"):
        # Google ignores fields it does not know, and times get their own
        # checks (a dateTime may lack its offset when a timeZone is given);
        # a value of the wrong JSON type is an error.
        if violation.problem.startswith("expected "):
            raise CalendarError(400, "invalid", f"Invalid value for: {violation.path}")


def _clean_event(body: dict[str, Any], calendar: Calendar) -> dict[str, Any]:
    """The writable fields of `body`, validated and with defaults filled in."""
    clean = {k: copy.deepcopy(body[k]) for k in WRITABLE_FIELDS if body.get(k) is not None}
    for name, allowed in _ENUMS.items():
        if name in clean and clean[name] not in allowed:
            raise CalendarError(400, "invalid", f"Invalid value for: {name}")
    start = _event_time(clean.get("start"), "start")
    end = _event_time(clean.get("end"), "end")
    if isinstance(start, datetime) != isinstance(end, datetime):
        raise CalendarError(
            400, "invalid", "Start and end times must either both be date or both be dateTime."
        )
    if isinstance(start, datetime) and isinstance(end, datetime):
        if end < start:
            raise CalendarError(400, "timeRangeEmpty", "The specified time range is empty.")
    elif end <= start:
        raise CalendarError(400, "timeRangeEmpty", "The specified time range is empty.")
    if "recurrence" in clean:
        if isinstance(start, datetime) and not clean["start"].get("timeZone"):
            raise CalendarError(400, "required", "Missing time zone definition for start time.")
        try:
            recurrence.parse(clean["recurrence"], _event_zone(clean, calendar))
        except recurrence.RecurrenceError as exc:
            raise CalendarError(400, "invalid", f"Invalid recurrence rule: {exc}") from exc
    for attendee in clean.get("attendees", []):
        if not attendee.get("email"):
            raise CalendarError(400, "required", "Missing attendee email.")
        attendee.setdefault("responseStatus", "needsAction")
        if attendee["responseStatus"] not in _RESPONSE_STATUSES:
            raise CalendarError(400, "invalid", "Invalid attendee responseStatus.")
    reminders = clean.setdefault("reminders", {"useDefault": True})
    if reminders.get("useDefault") and reminders.get("overrides"):
        raise CalendarError(
            400,
            "cannotUseDefaultRemindersAndSpecifyOverride",
            "Cannot specify both default reminders and overrides at the same time.",
        )
    return clean


def _event_time(value: Any, which: str) -> datetime | date:
    if not isinstance(value, dict) or not (value.get("date") or value.get("dateTime")):
        raise CalendarError(400, "required", f"Missing {which} time.")
    zone_name = value.get("timeZone")
    zone: tzinfo | None = None
    if zone_name:
        try:
            zone = timeutil.zone(zone_name)
        except ValueError as exc:
            raise CalendarError(
                400, "timeZoneNotFound", f"Invalid time zone definition for {which} time."
            ) from exc
    try:
        if value.get("date"):
            if value.get("dateTime"):
                raise ValueError("both date and dateTime")
            return timeutil.parse_date(value["date"])
        text = value["dateTime"]
        if zone is None:
            try:
                return timeutil.parse_rfc3339(text)
            except ValueError:
                if re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$", text):
                    raise CalendarError(
                        400, "required", f"Missing time zone definition for {which} time."
                    ) from None
                raise
        return timeutil.parse_local(text, zone)
    except ValueError as exc:
        raise CalendarError(400, "invalid", f"Invalid {which} time.") from exc


def _event_zone(body: dict[str, Any], calendar: Calendar) -> tzinfo:
    name = body.get("start", {}).get("timeZone") or calendar.time_zone
    return timeutil.zone(name)


def _instant(value: datetime | date, zone: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(0), tzinfo=zone)


@dataclass(frozen=True)
class Span:
    """An event occurrence: its start and end (dates for all-day events)."""

    start: datetime | date
    end: datetime | date

    def bounds(self, zone: tzinfo) -> tuple[datetime, datetime]:
        return _instant(self.start, zone), _instant(self.end, zone)


def _base_span(event: StoredEvent, calendar: Calendar) -> Span:
    return Span(_event_time(event.body["start"], "start"), _event_time(event.body["end"], "end"))


def _recurrence_of(event: StoredEvent, calendar: Calendar) -> recurrence.Recurrence | None:
    lines = event.body.get("recurrence")
    if not lines:
        return None
    return recurrence.parse(lines, _event_zone(event.body, calendar))


def _instances(
    event: StoredEvent,
    calendar: Calendar,
    window_start: datetime | None,
    window_end: datetime | None,
) -> list[Span]:
    """The occurrences of a recurring event overlapping the window."""
    base = _base_span(event, calendar)
    rule = _recurrence_of(event, calendar)
    assert rule is not None
    zone = _event_zone(event.body, calendar)
    cal_zone = timeutil.zone(calendar.time_zone)
    duration = _minus(base.end, base.start)
    spans = []
    for start in recurrence.occurrences(base.start, zone, rule, window_end):
        span = Span(start, start + duration)
        _, end = span.bounds(cal_zone)
        if window_start is None or end > window_start:
            spans.append(span)
    return spans


def _minus(end: datetime | date, start: datetime | date) -> timedelta:
    return end - start  # type: ignore[operator]  # both dates or both datetimes


def _instance_id(event_id: str, start: datetime | date) -> str:
    if isinstance(start, datetime):
        return f"{event_id}_{start.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    return f"{event_id}_{start.strftime('%Y%m%d')}"


# --- rendering ------------------------------------------------------------


def _etag(event: StoredEvent) -> str:
    return f'"{int(event.updated.timestamp() * 1_000_000)}{event.change_seq % 1000:03d}"'


def _html_link(event_id: str, calendar_id: str) -> str:
    eid = b64url(f"{event_id} {calendar_id}".encode())
    return f"https://www.google.com/calendar/event?eid={eid}"


def _person(email: str, caller: Caller, display_name: str | None = None) -> dict[str, Any]:
    person: dict[str, Any] = {"email": email}
    if display_name:
        person["displayName"] = display_name
    if caller.email is not None and caller.email == email:
        person["self"] = True
    return person


def _render_time(raw: dict[str, Any], value: datetime | date, zone: tzinfo) -> dict[str, Any]:
    if isinstance(value, datetime):
        rendered: dict[str, Any] = {"dateTime": timeutil.format_event_time(value, zone)}
        if raw.get("timeZone"):
            rendered["timeZone"] = raw["timeZone"]
        return rendered
    return {"date": value.isoformat()}


def render_event(
    calendar: Calendar,
    event: StoredEvent,
    caller: Caller,
    zone: tzinfo,
    *,
    span: Span | None = None,
    consumed: set[str] | None = None,
) -> dict[str, Any]:
    """The Event resource; `span` renders one instance of a recurring event.

    `consumed` collects the events whose pending conference has been shown in
    this response (None: a sandbox-internal look that must not count).
    """
    body = event.body
    base = _base_span(event, calendar)
    occurrence = span or base
    event_id = _instance_id(event.id, occurrence.start) if span else event.id
    out: dict[str, Any] = {
        "kind": "calendar#event",
        "etag": _etag(event),
        "id": event_id,
        "status": event.status,
        "htmlLink": _html_link(event_id, calendar.id),
        "created": timeutil.format_timestamp(event.created),
        "updated": timeutil.format_timestamp(event.updated),
    }
    for name in ("summary", "description", "location", "colorId"):
        if name in body:
            out[name] = body[name]
    out["creator"] = _person(event.creator or calendar.owner, caller)
    organizer_name = calendar.summary if calendar.id != calendar.owner else None
    out["organizer"] = _person(calendar.id, caller, organizer_name)
    if calendar.owner == caller.email:
        out["organizer"]["self"] = True
    out["start"] = _render_time(body["start"], occurrence.start, zone)
    out["end"] = _render_time(body["end"], occurrence.end, zone)
    if span is None and "recurrence" in body:
        out["recurrence"] = list(body["recurrence"])
    if span is not None:
        out["recurringEventId"] = event.id
        out["originalStartTime"] = _render_time(body["start"], span.start, zone)
    for name in ("transparency", "visibility", "endTimeUnspecified"):
        if name in body:
            out[name] = body[name]
    out["iCalUID"] = event.ical_uid
    out["sequence"] = event.sequence
    if body.get("attendees"):
        out["attendees"] = [_render_attendee(a, calendar, caller) for a in body["attendees"]]
    for name in (
        "extendedProperties",
        "source",
        "guestsCanInviteOthers",
        "guestsCanModify",
        "guestsCanSeeOtherGuests",
        "anyoneCanAddSelf",
    ):
        if name in body:
            out[name] = copy.deepcopy(body[name])
    conference, hangout_link = _conference_view(event, consumed)
    if hangout_link:
        out["hangoutLink"] = hangout_link
    if conference is not None:
        out["conferenceData"] = conference
    out["reminders"] = copy.deepcopy(body.get("reminders", {"useDefault": True}))
    out["eventType"] = "default"
    return out


def _render_attendee(
    attendee: dict[str, Any], calendar: Calendar, caller: Caller
) -> dict[str, Any]:
    rendered = copy.deepcopy(attendee)
    if attendee["email"] == calendar.id:
        rendered["organizer"] = True
    if caller.email is not None and attendee["email"] == caller.email:
        rendered["self"] = True
    return rendered


# --- Meet conferences --------------------------------------------------------


def _apply_conference(sandbox: Sandbox, event: StoredEvent, data: dict[str, Any] | None) -> None:
    """conferenceData as sent with conferenceDataVersion=1."""
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
        settings = sandbox.state.conference_settings
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


def _conference_view(
    event: StoredEvent, consumed: set[str] | None
) -> tuple[dict[str, Any] | None, str | None]:
    conference = event.conference
    if conference is None:
        raw = event.body.get("conferenceData")
        if raw is None:
            return None, None
        video = [e for e in raw.get("entryPoints", []) if e.get("entryPointType") == "video"]
        return copy.deepcopy(raw), (video[0].get("uri") if video else None)
    if conference.pending_left > 0:
        status = "pending"
        if consumed is not None and event.id not in consumed:
            consumed.add(event.id)
            conference.pending_left -= 1
    else:
        status = conference.outcome
    data: dict[str, Any] = {
        "createRequest": {
            "requestId": conference.request_id,
            "conferenceSolutionKey": {"type": conference.solution_type},
            "status": {"statusCode": status},
        }
    }
    if status != "success":
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


# --- change bookkeeping ---------------------------------------------------


def _touch(calendar: Calendar, event: StoredEvent) -> None:
    """Record a change: a new `updated`, and a place in the calendar's change order
    (what sync tokens are measured against)."""
    calendar.change_seq += 1
    event.change_seq = calendar.change_seq
    event.updated = max(timeutil.now(), event.updated + timedelta(milliseconds=1))
    calendar.updated = event.updated


def _find_event(calendar: Calendar, event_id: str) -> tuple[StoredEvent, Span | None]:
    event = calendar.events.get(event_id)
    if event is not None:
        return event, None
    match = _INSTANCE_ID_RE.match(event_id)
    if match is None:
        raise not_found()
    master = calendar.events.get(match["base"])
    if master is None or not master.body.get("recurrence"):
        raise not_found()
    text = match["start"]
    if "T" in text:
        wanted: datetime | date = datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    else:
        wanted = datetime.strptime(text, "%Y%m%d").date()  # noqa: DTZ007 - a date only
    zone = timeutil.zone(calendar.time_zone)
    window_end = _instant(wanted, zone) + timedelta(seconds=1)
    for span in _instances(master, calendar, None, window_end):
        if span.start == wanted and type(span.start) is type(wanted):
            return master, span
    raise not_found()


# --- handlers -------------------------------------------------------------


def insert(ctx: RequestContext) -> Reply:
    sandbox = ctx.sandbox
    state = sandbox.state
    caller = authenticate(ctx)
    _require(caller, WRITE_SCOPES, needs_user=True)
    send_updates = _send_updates(ctx)
    version = _conference_version(ctx)
    body = ctx.json_body(_parse_error)
    with state.lock:
        calendar = _writable_calendar(state, caller, ctx.params["calendar_id"])
        zone = _zone_arg(ctx, calendar)
        _check_types(sandbox, body)
        event_id = body.get("id")
        if event_id is not None:
            if not _EVENT_ID_RE.match(event_id):
                raise CalendarError(400, "invalid", "Invalid resource id value.")
            if event_id in calendar.events:
                raise CalendarError(409, "duplicate", "The requested identifier already exists.")
        else:
            event_id = new_event_id()
            while event_id in calendar.events:
                event_id = new_event_id()
        if body.get("id") and body.get("iCalUID"):
            raise CalendarError(400, "invalid", "Only one of id and iCalUID may be given.")
        clean = _clean_event(body, calendar)
        now = timeutil.now()
        event = StoredEvent(
            id=event_id,
            calendar_id=calendar.id,
            body=clean,
            created=now,
            updated=now,
            creator=caller.email,
            order=calendar.next_order,
            change_seq=0,
            ical_uid=body.get("iCalUID") or f"{event_id}@google.com",
        )
        calendar.next_order += 1
        if version == 1 and "conferenceData" in body:
            _apply_conference(sandbox, event, body["conferenceData"])
        calendar.events[event_id] = event
        _touch(calendar, event)
        _record_send_updates(sandbox, event, ctx.method_id, send_updates)
        result = render_event(calendar, event, caller, zone, consumed=set())
        sandbox.notifier.changed(calendar.id)
    return Reply(result)


def get(ctx: RequestContext) -> Reply:
    state = ctx.sandbox.state
    caller = authenticate(ctx)
    _require(caller, READ_SCOPES, needs_user=False)
    with state.lock:
        calendar = _readable_calendar(state, caller, ctx.params["calendar_id"])
        event, span = _find_event(calendar, ctx.params["event_id"])
        zone = _zone_arg(ctx, calendar)
        return Reply(render_event(calendar, event, caller, zone, span=span, consumed=set()))


def patch(ctx: RequestContext) -> Reply:
    return _modify(ctx, replace=False)


def update(ctx: RequestContext) -> Reply:
    return _modify(ctx, replace=True)


def _modify(ctx: RequestContext, *, replace: bool) -> Reply:
    sandbox = ctx.sandbox
    state = sandbox.state
    caller = authenticate(ctx)
    _require(caller, WRITE_SCOPES, needs_user=True)
    send_updates = _send_updates(ctx)
    version = _conference_version(ctx)
    body = ctx.json_body(_parse_error)
    with state.lock:
        calendar = _writable_calendar(state, caller, ctx.params["calendar_id"])
        zone = _zone_arg(ctx, calendar)
        event, span = _find_event(calendar, ctx.params["event_id"])
        if span is not None:
            raise CalendarError(
                400,
                "invalid",
                "The sandbox does not support changing one instance of a recurring event.",
            )
        _check_types(sandbox, body)
        if replace:
            merged = {k: body[k] for k in WRITABLE_FIELDS if k in body}
        else:
            merged = _merge_patch(event.body, {k: body[k] for k in WRITABLE_FIELDS if k in body})
        clean = _clean_event(merged, calendar)
        if any(event.body.get(k) != clean.get(k) for k in ("start", "end", "recurrence")):
            event.sequence += 1
        # conferenceData is not a plain writable field: without
        # conferenceDataVersion=1 the event keeps whatever conference it had.
        if "conferenceData" in event.body:
            clean["conferenceData"] = event.body["conferenceData"]
        event.body = clean
        if version == 1 and "conferenceData" in body:
            _apply_conference(sandbox, event, body["conferenceData"])
        elif version == 1 and replace:
            _apply_conference(sandbox, event, None)
        _touch(calendar, event)
        _record_send_updates(sandbox, event, ctx.method_id, send_updates)
        result = render_event(calendar, event, caller, zone, consumed=set())
        sandbox.notifier.changed(calendar.id)
    return Reply(result)


def _merge_patch(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """Patch semantics: objects merge field by field, arrays and scalars replace,
    null clears. start/end replace whole, so a switch from dateTime to date works."""
    merged = copy.deepcopy(current)
    for key, value in change.items():
        if value is None:
            merged.pop(key, None)
        elif key in ("start", "end") or not isinstance(value, dict):
            merged[key] = copy.deepcopy(value)
        elif isinstance(merged.get(key), dict):
            merged[key] = _merge_patch(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def delete(ctx: RequestContext) -> Reply:
    sandbox = ctx.sandbox
    state = sandbox.state
    caller = authenticate(ctx)
    _require(caller, WRITE_SCOPES, needs_user=True)
    send_updates = _send_updates(ctx)
    with state.lock:
        calendar = _writable_calendar(state, caller, ctx.params["calendar_id"])
        event, span = _find_event(calendar, ctx.params["event_id"])
        if span is not None:
            raise CalendarError(
                400,
                "invalid",
                "The sandbox does not support deleting one instance of a recurring event.",
            )
        if event.cancelled:
            raise CalendarError(410, "deleted", "Resource has been deleted")
        # The event stays as a tombstone: get still returns it, its id stays taken.
        event.body["status"] = "cancelled"
        _touch(calendar, event)
        _record_send_updates(sandbox, event, ctx.method_id, send_updates)
        sandbox.notifier.changed(calendar.id)
    return Reply(None, 204)


# --- list -----------------------------------------------------------------


@dataclass(frozen=True)
class ListQuery:
    time_min: datetime | None
    time_max: datetime | None
    updated_min: datetime | None
    single_events: bool
    order_by: str | None
    show_deleted: bool
    q: str | None
    private_props: list[tuple[str, str]]
    shared_props: list[tuple[str, str]]
    ical_uid: str | None


def _list_query(ctx: RequestContext) -> ListQuery:
    args = ctx.request.args
    time_min, time_max = _time_arg(ctx, "timeMin"), _time_arg(ctx, "timeMax")
    if time_min is not None and time_max is not None and time_max <= time_min:
        raise CalendarError(
            400,
            "timeRangeEmpty",
            "The specified time range is empty.",
            domain="calendar",
            location_type="parameter",
            location="timeMax",
        )
    single_events = _bool_arg(ctx, "singleEvents")
    order_by = args.get("orderBy")
    if order_by not in (None, "startTime", "updated"):
        raise bad_request("invalid", f"Invalid value for orderBy: {order_by}", "orderBy")
    if order_by == "startTime" and not single_events:
        raise bad_request(
            "badRequest", "The requested ordering is not available for the particular query."
        )
    return ListQuery(
        time_min=time_min,
        time_max=time_max,
        updated_min=_time_arg(ctx, "updatedMin"),
        single_events=single_events,
        order_by=order_by,
        show_deleted=_bool_arg(ctx, "showDeleted"),
        q=args.get("q"),
        private_props=_property_filters(args.getlist("privateExtendedProperty")),
        shared_props=_property_filters(args.getlist("sharedExtendedProperty")),
        ical_uid=args.get("iCalUID"),
    )


def _property_filters(values: list[str]) -> list[tuple[str, str]]:
    filters = []
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key:
            raise bad_request("invalid", f"Invalid extended property constraint: {value}")
        filters.append((key, wanted))
    return filters


def list_events(ctx: RequestContext) -> Reply:
    state = ctx.sandbox.state
    caller = authenticate(ctx)
    _require(caller, READ_SCOPES, needs_user=False)
    max_results = _int_arg(ctx, "maxResults", DEFAULT_MAX_RESULTS)
    if max_results < 1:
        raise bad_request("invalid", "Invalid value for maxResults", "maxResults")
    max_results = min(max_results, MAX_MAX_RESULTS)
    args = ctx.request.args
    page_token, sync_token = args.get("pageToken"), args.get("syncToken")
    query = _list_query(ctx)
    if sync_token is not None:
        clashing = [name for name in _SYNC_INCOMPATIBLE if name in args]
        if clashing:
            raise bad_request(
                "invalid",
                f"Sync token cannot be combined with: {', '.join(clashing)}.",
                clashing[0],
            )
    with state.lock:
        calendar = _readable_calendar(state, caller, ctx.params["calendar_id"])
        zone = _zone_arg(ctx, calendar)
        if page_token is not None:
            cursor = state.page_cursors.get(page_token)
            if cursor is None or cursor.calendar_id != calendar.id:
                raise bad_request("invalid", "Invalid page token value.", "pageToken")
        else:
            since: int | None = None
            if sync_token is not None:
                point = state.sync_tokens.get(sync_token)
                if point is None or point.calendar_id != calendar.id:
                    raise CalendarError(
                        410,
                        "fullSyncRequired",
                        "Sync token is no longer valid, a full sync is required.",
                        domain="calendar",
                    )
                since = point.seq
            entries = _select(calendar, query, since)
            cursor = PageCursor(calendar.id, entries, 0, calendar.change_seq)
        page = cursor.entries[cursor.offset : cursor.offset + max_results]
        consumed: set[str] = set()
        items = []
        for event_id, start in page:
            event = calendar.events[event_id]
            span = _span_at(event, calendar, start) if start is not None else None
            items.append(render_event(calendar, event, caller, zone, span=span, consumed=consumed))
        owner = caller.email is not None and caller.email == calendar.owner
        result: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": f'"p{calendar.change_seq:016d}"',
            "summary": calendar.summary or calendar.id,
            "updated": timeutil.format_timestamp(calendar.updated or timeutil.now()),
            "timeZone": args.get("timeZone") or calendar.time_zone,
            "accessRole": "owner" if owner else "reader",
            "defaultReminders": copy.deepcopy(DEFAULT_REMINDERS) if owner else [],
        }
        next_offset = cursor.offset + len(page)
        if next_offset < len(cursor.entries):
            result["nextPageToken"] = state.remember_cursor(
                PageCursor(cursor.calendar_id, cursor.entries, next_offset, cursor.sync_seq)
            )
        else:
            result["nextSyncToken"] = state.issue_sync_token(calendar.id, cursor.sync_seq)
        result["items"] = items
    return Reply(result)


def _span_at(event: StoredEvent, calendar: Calendar, start: datetime | date) -> Span:
    base = _base_span(event, calendar)
    return Span(start, start + _minus(base.end, base.start))


def _select(calendar: Calendar, query: ListQuery, since: int | None) -> list[EntryRef]:
    """Every entry of a listing, in order: the whole result before paging."""
    zone = timeutil.zone(calendar.time_zone)
    chosen: list[tuple[StoredEvent, Span | None]] = []
    for event in sorted(calendar.events.values(), key=lambda e: e.order):
        if since is not None:
            # Incremental: every change since the token, deletions included.
            if event.change_seq <= since:
                continue
        else:
            deleted_since = query.updated_min is not None and event.updated >= query.updated_min
            if event.cancelled and not (query.show_deleted or deleted_since):
                continue
            if not _matches(event, query):
                continue
        recurring = bool(event.body.get("recurrence"))
        window = (query.time_min, query.time_max) if since is None else (None, None)
        if recurring and query.single_events:
            chosen.extend((event, span) for span in _instances(event, calendar, *window))
        elif recurring:
            if since is not None or _instances(event, calendar, *window):
                chosen.append((event, None))
        else:
            start, end = _base_span(event, calendar).bounds(zone)
            if window[0] is not None and end <= window[0]:
                continue
            if window[1] is not None and start >= window[1]:
                continue
            chosen.append((event, None))
    if query.order_by == "startTime":
        chosen.sort(key=lambda pair: (pair[1] or _base_span(pair[0], calendar)).bounds(zone)[0])
    elif query.order_by == "updated":
        chosen.sort(key=lambda pair: pair[0].updated)
    return [(event.id, span.start if span else None) for event, span in chosen]


def _matches(event: StoredEvent, query: ListQuery) -> bool:
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


# --- freeBusy -----------------------------------------------------------------


def freebusy(ctx: RequestContext) -> Reply:
    state = ctx.sandbox.state
    caller = authenticate(ctx)
    _require(caller, FREEBUSY_SCOPES, needs_user=False)
    body = ctx.json_body(_parse_error)
    bounds = []
    for name in ("timeMin", "timeMax"):
        if not body.get(name):
            raise CalendarError(400, "required", f"Missing {name} parameter.")
        try:
            bounds.append(timeutil.parse_rfc3339(body[name]))
        except ValueError as exc:
            raise CalendarError(400, "badRequest", "Bad Request") from exc
    time_min, time_max = bounds
    if time_max <= time_min:
        raise CalendarError(
            400, "timeRangeEmpty", "The specified time range is empty.", domain="calendar"
        )
    try:
        zone = timeutil.zone(body.get("timeZone") or "UTC")
    except ValueError as exc:
        raise CalendarError(400, "invalid", "Invalid time zone.") from exc
    calendars: dict[str, Any] = {}
    with state.lock:
        for item in body.get("items") or []:
            calendar_id = item.get("id", "")
            try:
                calendar = _readable_calendar(state, caller, calendar_id)
            except CalendarError:
                calendars[calendar_id] = {
                    "errors": [{"domain": "global", "reason": "notFound"}],
                    "busy": [],
                }
                continue
            busy = _busy(calendar, time_min, time_max)
            calendars[calendar_id] = {
                "busy": [
                    {
                        "start": timeutil.format_event_time(start, zone),
                        "end": timeutil.format_event_time(end, zone),
                    }
                    for start, end in busy
                ]
            }
    return Reply(
        {
            "kind": "calendar#freeBusy",
            "timeMin": timeutil.format_timestamp(time_min),
            "timeMax": timeutil.format_timestamp(time_max),
            "calendars": calendars,
        }
    )


def _busy(
    calendar: Calendar, time_min: datetime, time_max: datetime
) -> list[tuple[datetime, datetime]]:
    """Merged busy periods of opaque, live events, clipped to the window."""
    zone = timeutil.zone(calendar.time_zone)
    periods = []
    for event in calendar.events.values():
        if event.cancelled or event.body.get("transparency") == "transparent":
            continue
        if event.body.get("recurrence"):
            spans = _instances(event, calendar, time_min, time_max)
        else:
            spans = [_base_span(event, calendar)]
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


# --- push channels ------------------------------------------------------------


def watch(ctx: RequestContext) -> Reply:
    sandbox = ctx.sandbox
    state = sandbox.state
    caller = authenticate(ctx)
    _require(caller, READ_SCOPES, needs_user=True)
    body = ctx.json_body(_parse_error)
    channel_id = body.get("id") or ""
    if not _CHANNEL_ID_RE.match(channel_id):
        raise CalendarError(400, "invalid", f"Invalid channel id: {channel_id!r}")
    if body.get("type") not in ("web_hook", "webhook"):
        raise CalendarError(400, "invalid", f"Unknown channel type: {body.get('type')!r}")
    address = body.get("address") or ""
    scheme = urllib.parse.urlsplit(address).scheme
    # The one relaxation: Google takes https only; the sandbox also takes http to loopback.
    if not (scheme == "https" or (scheme == "http" and is_loopback_url(address))):
        raise CalendarError(
            400, "push.webhookUrlNotHttps", f"WebHook callback must be HTTPS: {address}"
        )
    token = body.get("token")
    if token is not None and len(token) > 256:
        raise CalendarError(400, "invalid", "Channel token is longer than 256 characters.")
    expiration = _channel_expiration(body)
    with state.lock:
        calendar = _readable_calendar(state, caller, ctx.params["calendar_id"])
        existing = sandbox.notifier.find(channel_id)
        if existing is not None and existing.active():
            raise CalendarError(400, "channelIdNotUnique", f"Channel id {channel_id} not unique")
        quoted = urllib.parse.quote(calendar.id, safe="")
        channel = Channel(
            id=channel_id,
            resource_id=secrets.token_urlsafe(20)[:27],
            resource_uri=f"https://www.googleapis.com/calendar/v3/calendars/{quoted}/events?alt=json",
            calendar_id=calendar.id,
            owner=caller.email or "",
            address=address,
            token=token,
            expiration=expiration,
            params=dict(body.get("params") or {}),
        )
        sandbox.notifier.open(channel)
    result: dict[str, Any] = {
        "kind": "api#channel",
        "id": channel.id,
        "resourceId": channel.resource_id,
        "resourceUri": channel.resource_uri,
        "expiration": str(timeutil.to_millis(channel.expiration)),
    }
    if token is not None:
        result["token"] = token
    return Reply(result)


def _channel_expiration(body: dict[str, Any]) -> datetime:
    latest = timeutil.now() + CHANNEL_TTL
    wanted: datetime | None = None
    if body.get("expiration") is not None:
        try:
            wanted = timeutil.from_millis(int(body["expiration"]))
        except (TypeError, ValueError) as exc:
            raise CalendarError(400, "invalid", "Invalid channel expiration.") from exc
    ttl = (body.get("params") or {}).get("ttl")
    if ttl is not None:
        try:
            wanted = timeutil.now() + timedelta(seconds=int(ttl))
        except ValueError as exc:
            raise CalendarError(400, "invalid", "Invalid ttl parameter.") from exc
    # An earlier expiration is honoured; a later one is cut to the maximum.
    return min(wanted, latest) if wanted is not None else latest


def stop_channel(ctx: RequestContext) -> Reply:
    sandbox = ctx.sandbox
    caller = authenticate(ctx)
    _require(caller, READ_SCOPES, needs_user=True)
    body = ctx.json_body(_parse_error)
    channel_id = body.get("id", "")
    with sandbox.state.lock:
        channel = sandbox.notifier.find(channel_id)
        if (
            channel is None
            or channel.resource_id != body.get("resourceId")
            or channel.owner != caller.email
        ):
            raise CalendarError(404, "notFound", f"Channel '{channel_id}' not found")
        sandbox.notifier.stop(channel)
    return Reply(None, 204)


# --- control-side views ---------------------------------------------------------


def dump_events(sandbox: Sandbox, calendar_id: str) -> list[dict[str, Any]]:
    """Every event of a calendar, tombstones included, with its sendUpdates log."""
    state = sandbox.state
    with state.lock:
        calendar = state.calendars.get(calendar_id)
        if calendar is None:
            return []
        viewer = Caller(calendar.owner, frozenset())
        zone = timeutil.zone(calendar.time_zone)
        dumped = []
        for event in sorted(calendar.events.values(), key=lambda e: e.order):
            rendered = render_event(calendar, event, viewer, zone, consumed=None)
            rendered["sandbox"] = {
                "sendUpdates": copy.deepcopy(event.send_updates_log),
                "changeSeq": event.change_seq,
                "conference": (
                    None
                    if event.conference is None
                    else {
                        "requestId": event.conference.request_id,
                        "outcome": event.conference.outcome,
                        "pendingReadsLeft": event.conference.pending_left,
                        "code": event.conference.code,
                    }
                ),
            }
            dumped.append(rendered)
        return dumped
