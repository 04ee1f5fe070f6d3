"""oauth_callback: the school admin connects classcal to the school's Google account.

``GET /start`` redirects to Google's consent page; ``GET /callback`` finishes the flow
and stores the refresh token; ``GET /`` tells whether classcal is connected (HTML, or
JSON with ``Accept: application/json``). docs/contracts/oauth_callback.md has the details.
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
