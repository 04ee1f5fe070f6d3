"""join_class: a student joins (POST) or leaves (DELETE) a group class with its access code.

Public, for the school's site: ``{"accessCode": "..."}`` with the student's Google ID
token as ``Authorization: Bearer``. It touches Firestore only (and nudges the private
guest_invitations function over Pub/Sub); it never holds the school's Google token.
docs/contracts/join_class.md says what each answer means.
"""

from __future__ import annotations

import flask
import functions_framework

from shared.web import join_http, serving


@functions_framework.http
def join_class(request: flask.Request) -> flask.Response:
    return serving.run(request, join_http.handle, name="join_class", answers=join_http.ANSWERS)
