"""Calendar's routes table, and the `Api` the server mounts."""

from __future__ import annotations

from sandbox.calendar import handlers
from sandbox.calendar.backend import CalendarBackend
from sandbox.calendar.errors import fault_error, invalid_fields
from sandbox.core.routing import Api, RouteRow, bind

P = "/calendar/v3"
EVENTS = f"{P}/calendars/(?P<calendar_id>[^/]+)/events"
EVENT = f"{EVENTS}/(?P<event_id>[^/]+)"

TABLE: tuple[RouteRow, ...] = (
    ("POST", f"{EVENTS}/watch", "calendar.events.watch", handlers.watch),
    ("POST", EVENTS, "calendar.events.insert", handlers.insert),
    ("GET", EVENTS, "calendar.events.list", handlers.list_events),
    ("GET", EVENT, "calendar.events.get", handlers.get),
    ("PATCH", EVENT, "calendar.events.patch", handlers.patch),
    ("PUT", EVENT, "calendar.events.update", handlers.update),
    ("DELETE", EVENT, "calendar.events.delete", handlers.delete),
    ("POST", f"{P}/freeBusy", "calendar.freebusy.query", handlers.freebusy),
    ("POST", f"{P}/channels/stop", "calendar.channels.stop", handlers.stop_channel),
)


def apis(backend: CalendarBackend) -> list[Api]:
    return [
        Api(
            name="calendar",
            prefixes=("/calendar/",),
            routes=bind(TABLE, backend),
            error=fault_error,
            schema=backend.schema,
            invalid_fields=invalid_fields,
        )
    ]
