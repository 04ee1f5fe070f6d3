"""oauth_callback: the school admin's console, sign-in, and connecting Google.

``GET /`` shows anyone whether classcal is connected and offers "Sign in with Google";
signed in, the admin's console (the connection, the calendar link, the bookings that
need a person, "Retry now"). ``POST /start`` (signed in) sends the admin to Google's
consent page; ``GET /callback`` finishes it and stores the refresh token. ``GET
/healthz`` is for uptime checks. docs/contracts/admin_console.md has the details.
"""

from __future__ import annotations

import flask
import functions_framework

from shared.web import connect_pages, serving


@functions_framework.http
def oauth_callback(request: flask.Request) -> flask.Response:
    return serving.run(
        request, connect_pages.handle, name="oauth_callback", answers=connect_pages.ANSWERS
    )
