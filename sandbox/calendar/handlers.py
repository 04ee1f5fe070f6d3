"""Calendar's HTTP side: each handler authenticates the caller, parses the query
string and the body into plain values, calls the backend and renders its answer."""

from __future__ import annotations

from datetime import datetime

from sandbox.calendar import render
from sandbox.calendar.auth import (
    API_KEY_CALLER,
    FREEBUSY_SCOPES,
    READ_SCOPES,
    WRITE_SCOPES,
    Caller,
    auth_error,
    require,
)
from sandbox.calendar.backend import DEFAULT_MAX_RESULTS, CalendarBackend
from sandbox.calendar.errors import CalendarError, bad_request
from sandbox.calendar.query import ListQuery
from sandbox.core import timeutil
from sandbox.core.routing import ApiRequest, Reply

_SEND_UPDATES = ("all", "externalOnly", "none")
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


# --- request parsing --------------------------------------------------------------


def authenticate(backend: CalendarBackend, req: ApiRequest) -> Caller:
    header = req.headers.get("Authorization")
    if header:
        scheme, _, token = header.partition(" ")
        return backend.authenticate(token.strip() if scheme.lower() == "bearer" else None)
    if req.args.get("key"):
        return API_KEY_CALLER
    raise auth_error("Login Required.")


def parse_error(message: str) -> CalendarError:
    return CalendarError(400, "parseError", message)


def _bool_arg(req: ApiRequest, name: str) -> bool:
    value = req.args.get(name)
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise bad_request("invalid", f"Invalid boolean value for {name}: {value}", name)
    return value.lower() == "true"


def _int_arg(req: ApiRequest, name: str, default: int) -> int:
    value = req.args.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise bad_request("invalid", f"Invalid integer value for {name}: {value}", name) from exc


def _time_arg(req: ApiRequest, name: str) -> datetime | None:
    value = req.args.get(name)
    if value is None:
        return None
    try:
        return timeutil.parse_rfc3339(value)
    except ValueError as exc:
        raise bad_request("badRequest", "Bad Request", name) from exc


def _send_updates(req: ApiRequest) -> str | None:
    value = req.args.get("sendUpdates")
    if value is not None:
        if value not in _SEND_UPDATES:
            raise bad_request("invalid", f"Invalid value for sendUpdates: {value}", "sendUpdates")
        return value
    legacy = req.args.get("sendNotifications")
    if legacy is not None:
        return "all" if legacy.lower() == "true" else "none"
    return None


def _conference_version(req: ApiRequest) -> int:
    version = _int_arg(req, "conferenceDataVersion", 0)
    if version not in (0, 1):
        raise bad_request(
            "invalid", f"Invalid conferenceDataVersion: {version}", "conferenceDataVersion"
        )
    return version


def _property_filters(values: list[str]) -> list[tuple[str, str]]:
    filters = []
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key:
            raise bad_request("invalid", f"Invalid extended property constraint: {value}")
        filters.append((key, wanted))
    return filters


def _list_query(req: ApiRequest) -> ListQuery:
    args = req.args
    time_min, time_max = _time_arg(req, "timeMin"), _time_arg(req, "timeMax")
    if time_min is not None and time_max is not None and time_max <= time_min:
        raise CalendarError(
            400,
            "timeRangeEmpty",
            "The specified time range is empty.",
            domain="calendar",
            location_type="parameter",
            location="timeMax",
        )
    single_events = _bool_arg(req, "singleEvents")
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
        updated_min=_time_arg(req, "updatedMin"),
        single_events=single_events,
        order_by=order_by,
        show_deleted=_bool_arg(req, "showDeleted"),
        q=args.get("q"),
        private_props=_property_filters(args.getlist("privateExtendedProperty")),
        shared_props=_property_filters(args.getlist("sharedExtendedProperty")),
        ical_uid=args.get("iCalUID"),
    )


# --- events -----------------------------------------------------------------------


def insert(backend: CalendarBackend, req: ApiRequest) -> Reply:
    caller = authenticate(backend, req)
    require(caller, WRITE_SCOPES, needs_user=True)
    send_updates = _send_updates(req)
    version = _conference_version(req)
    body = req.json_body(parse_error)
    view = backend.insert(
        caller,
        req.params["calendar_id"],
        body,
        send_updates=send_updates,
        conference_version=version,
        time_zone=req.args.get("timeZone"),
    )
    return Reply(render.event(view))


def get(backend: CalendarBackend, req: ApiRequest) -> Reply:
    caller = authenticate(backend, req)
    require(caller, READ_SCOPES, needs_user=False)
    view = backend.get(
        caller,
        req.params["calendar_id"],
        req.params["event_id"],
        time_zone=req.args.get("timeZone"),
    )
    return Reply(render.event(view))


def patch(backend: CalendarBackend, req: ApiRequest) -> Reply:
    return _modify(backend, req, replace=False)


def update(backend: CalendarBackend, req: ApiRequest) -> Reply:
    return _modify(backend, req, replace=True)


def _modify(backend: CalendarBackend, req: ApiRequest, *, replace: bool) -> Reply:
    caller = authenticate(backend, req)
    require(caller, WRITE_SCOPES, needs_user=True)
    send_updates = _send_updates(req)
    version = _conference_version(req)
    body = req.json_body(parse_error)
    change = backend.update if replace else backend.patch
    view = change(
        caller,
        req.params["calendar_id"],
        req.params["event_id"],
        body,
        send_updates=send_updates,
        conference_version=version,
        time_zone=req.args.get("timeZone"),
    )
    return Reply(render.event(view))


def delete(backend: CalendarBackend, req: ApiRequest) -> Reply:
    caller = authenticate(backend, req)
    require(caller, WRITE_SCOPES, needs_user=True)
    send_updates = _send_updates(req)
    backend.delete(
        caller, req.params["calendar_id"], req.params["event_id"], send_updates=send_updates
    )
    return Reply(None, 204)


def list_events(backend: CalendarBackend, req: ApiRequest) -> Reply:
    caller = authenticate(backend, req)
    require(caller, READ_SCOPES, needs_user=False)
    max_results = _int_arg(req, "maxResults", DEFAULT_MAX_RESULTS)
    if max_results < 1:
        raise bad_request("invalid", "Invalid value for maxResults", "maxResults")
    args = req.args
    page_token, sync_token = args.get("pageToken"), args.get("syncToken")
    listing = _list_query(req)
    if sync_token is not None:
        if args.get("showDeleted", "").lower() == "false":
            # Deleted events are always part of an incremental sync.
            raise bad_request(
                "invalid", "showDeleted=false cannot be combined with a sync token.", "showDeleted"
            )
        clashing = [name for name in _SYNC_INCOMPATIBLE if name in args]
        if clashing:
            raise bad_request(
                "invalid",
                f"Sync token cannot be combined with: {', '.join(clashing)}.",
                clashing[0],
            )
    page = backend.list_events(
        caller,
        req.params["calendar_id"],
        listing,
        max_results=max_results,
        page_token=page_token,
        sync_token=sync_token,
        time_zone=args.get("timeZone"),
    )
    return Reply(render.event_list(page))


# --- freeBusy and push channels ---------------------------------------------------


def freebusy(backend: CalendarBackend, req: ApiRequest) -> Reply:
    caller = authenticate(backend, req)
    require(caller, FREEBUSY_SCOPES, needs_user=False)
    body = req.json_body(parse_error)
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
    calendar_ids = [item.get("id", "") for item in body.get("items") or []]
    results = backend.freebusy(caller, time_min, time_max, calendar_ids)
    return Reply(render.freebusy(time_min, time_max, zone, results))


def watch(backend: CalendarBackend, req: ApiRequest) -> Reply:
    caller = authenticate(backend, req)
    require(caller, READ_SCOPES, needs_user=True)
    body = req.json_body(parse_error)
    channel = backend.watch(caller, req.params["calendar_id"], body)
    return Reply(render.channel(channel))


def stop_channel(backend: CalendarBackend, req: ApiRequest) -> Reply:
    caller = authenticate(backend, req)
    require(caller, READ_SCOPES, needs_user=True)
    body = req.json_body(parse_error)
    backend.stop_channel(caller, body.get("id", ""), body.get("resourceId"))
    return Reply(None, 204)
