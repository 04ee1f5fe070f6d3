"""The rules for event bodies and their occurrences: which fields a client may write,
how they are validated and defaulted, patch semantics, and recurring events'
instances and instance ids. Pure functions over the models; no state, no lock."""

from __future__ import annotations

import copy
import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sandbox.calendar import recurrence
from sandbox.calendar.errors import CalendarError
from sandbox.calendar.models import Calendar, Span, StoredEvent, instant
from sandbox.core import timeutil
from sandbox.core.schema import DiscoverySchema

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
EVENT_ID_RE = re.compile(r"^[0-9a-v]{5,1024}$")
_INSTANCE_ID_RE = re.compile(r"^(?P<base>[0-9a-v]{5,1024})_(?P<start>\d{8}(?:T\d{6}Z)?)$")


def check_types(schema: DiscoverySchema, body: dict[str, Any]) -> None:
    for violation in schema.validate(body, "Event"):
        # Google ignores fields it does not know, and times get their own
        # checks (a dateTime may lack its offset when a timeZone is given);
        # a value of the wrong JSON type is an error.
        if violation.problem.startswith("expected "):
            raise CalendarError(400, "invalid", f"Invalid value for: {violation.path}")


# What Google accepts as an attendee address, as far as public reports show: a dot-atom
# local part (no spaces, parentheses, quotes, commas or brackets, no leading, trailing or
# doubled dots) and a domain of letter/digit/hyphen labels with at least one dot.
_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def valid_attendee_email(email: Any) -> bool:
    if not isinstance(email, str) or len(email) > 254 or email.count("@") != 1:
        return False
    local, domain = email.split("@")
    labels = domain.split(".")
    return (
        len(local) <= 64
        and bool(_LOCAL_RE.match(local))
        and len(labels) >= 2
        and all(_LABEL_RE.match(label) for label in labels)
    )


def clean_event(body: dict[str, Any], calendar: Calendar) -> dict[str, Any]:
    """The writable fields of `body`, validated and with defaults filled in."""
    clean = {k: copy.deepcopy(body[k]) for k in WRITABLE_FIELDS if body.get(k) is not None}
    for name, allowed in _ENUMS.items():
        if name in clean and clean[name] not in allowed:
            raise CalendarError(400, "invalid", f"Invalid value for: {name}")
    start = event_time(clean.get("start"), "start")
    end = event_time(clean.get("end"), "end")
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
            recurrence.parse(clean["recurrence"], event_zone(clean, calendar))
        except recurrence.RecurrenceError as exc:
            raise CalendarError(400, "invalid", f"Invalid recurrence rule: {exc}") from exc
    for attendee in clean.get("attendees", []):
        if not attendee.get("email"):
            raise CalendarError(400, "required", "Missing attendee email.")
        if not valid_attendee_email(attendee["email"]):
            raise CalendarError(400, "invalid", "Invalid attendee email.")
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


def event_time(value: Any, which: str) -> datetime | date:
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


def event_zone(body: dict[str, Any], calendar: Calendar) -> tzinfo:
    name = body.get("start", {}).get("timeZone") or calendar.time_zone
    return timeutil.zone(name)


def merge_patch(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """Patch semantics: objects merge field by field, arrays and scalars replace,
    null clears. start/end replace whole, so a switch from dateTime to date works."""
    merged = copy.deepcopy(current)
    for key, value in change.items():
        if value is None:
            merged.pop(key, None)
        elif key in ("start", "end") or not isinstance(value, dict):
            merged[key] = copy.deepcopy(value)
        elif isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# --- occurrences ------------------------------------------------------------------


def base_span(event: StoredEvent) -> Span:
    return Span(event_time(event.body["start"], "start"), event_time(event.body["end"], "end"))


def duration(span: Span) -> timedelta:
    return span.end - span.start  # type: ignore[operator]  # both dates or both datetimes


def span_at(event: StoredEvent, start: datetime | date) -> Span:
    """The instance of a recurring event starting at `start`."""
    return Span(start, start + duration(base_span(event)))


def instances(
    event: StoredEvent,
    calendar: Calendar,
    window_start: datetime | None,
    window_end: datetime | None,
) -> list[Span]:
    """The occurrences of a recurring event overlapping the window."""
    base = base_span(event)
    zone = event_zone(event.body, calendar)
    rule = recurrence.parse(event.body["recurrence"], zone)
    cal_zone = timeutil.zone(calendar.time_zone)
    length = duration(base)
    spans = []
    for start in recurrence.occurrences(base.start, zone, rule, window_end):
        span = Span(start, start + length)
        _, end = span.bounds(cal_zone)
        if window_start is None or end > window_start:
            spans.append(span)
    return spans


def instance_id(event_id: str, start: datetime | date) -> str:
    if isinstance(start, datetime):
        return f"{event_id}_{start.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    return f"{event_id}_{start.strftime('%Y%m%d')}"


def find_instance(calendar: Calendar, event_id: str) -> tuple[StoredEvent, Span] | None:
    """The recurring event and the instance an instance id names; None when it names none."""
    match = _INSTANCE_ID_RE.match(event_id)
    if match is None:
        return None
    master = calendar.events.get(match["base"])
    if master is None or not master.body.get("recurrence"):
        return None
    text = match["start"]
    if "T" in text:
        wanted: datetime | date = datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    else:
        wanted = datetime.strptime(text, "%Y%m%d").date()  # noqa: DTZ007 - a date only
    zone = timeutil.zone(calendar.time_zone)
    window_end = instant(wanted, zone) + timedelta(seconds=1)
    for span in instances(master, calendar, None, window_end):
        if span.start == wanted and type(span.start) is type(wanted):
            return master, span
    return None
