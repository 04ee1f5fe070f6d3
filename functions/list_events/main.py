"""list_events: the school's busy slots for the public booking page (HTTP GET).

``GET /?timeMin=...&timeMax=...`` answers ``[{"start": {"dateTime", "timeZone"},
"end": {"dateTime", "timeZone"}, "status"}]`` sorted by start. docs/contracts/list_events.md
says what each header and error means.
"""

from __future__ import annotations

import flask
import functions_framework

from shared.web import busy_slots_http, serving


@functions_framework.http
def list_events(request: flask.Request) -> flask.Response:
    return serving.run(
        request, busy_slots_http.handle, name="list_events", answers=busy_slots_http.ANSWERS
    )
