"""The demo that ``./deploy.sh local --once`` runs against the local stack.

1. The admin connects the school's Google account through the real OAuth function and
   the sandbox's consent page (the form is submitted as a browser would).
2. A student's booking is written to Firestore, as the booking page does.
3. The payments system publishes the approved payment to ``payments``.
4. classcal schedules the class: the booking gets its Calendar event and Meet link.
5. The public busy-slots endpoint shows the new slot.
6. The admin moves the class in Google Calendar; the sandbox's push notification
   reaches the webhook and the booking follows.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import requests

from localstack import processes
from localstack.stack import ADMIN_EMAIL, CLIENT_ID, Stack


class DemoFailed(Exception):
    """The demo could not finish; the message says at which step and why."""


class _FormParser(HTMLParser):
    """Collects the first form on a page, as a browser would submit it."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: list[tuple[str, str]] = []
        self.buttons: dict[str, tuple[str, str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = a.get("action", "")
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind == "submit":
                self.buttons[a.get("id", a["name"])] = (a["name"], a.get("value", ""))
            else:
                self.fields.append((a["name"], a.get("value", "")))
        elif tag == "button":
            key = a.get("id") or a.get("value", "")
            if a.get("name"):
                self.buttons[key] = (a["name"], a.get("value", ""))
            else:
                self.buttons[key] = ("", "")


class _Browser:
    """Follows redirects and keeps cookies as a browser does on 127.0.0.1 (requests
    never sends a Secure cookie over plain HTTP, and the console's are __Host-)."""

    def __init__(self) -> None:
        self.cookies: dict[str, dict[str, str]] = {}

    def open(self, method: str, url: str, **options: Any) -> requests.Response:
        for _ in range(10):
            host = urllib.parse.urlsplit(url).netloc
            jar = self.cookies.setdefault(host, {})
            header = "; ".join(f"{k}={v}" for k, v in jar.items())
            response = requests.request(
                method,
                url,
                headers={"Cookie": header} if header else {},
                allow_redirects=False,
                timeout=30,
                **options,
            )
            for value in response.raw.headers.getlist("Set-Cookie"):
                name, _, rest = value.partition("=")
                if "Max-Age=0" in value:
                    jar.pop(name, None)
                else:
                    jar[name] = rest.split(";", 1)[0]
            if response.status_code not in (301, 302, 303, 307):
                response.url = url
                return response
            url = urllib.parse.urljoin(url, response.headers["Location"])
            method, options = "GET", {}
        raise DemoFailed(f"too many redirects from {url}")


def _consent(browser: _Browser, page: requests.Response) -> requests.Response:
    if page.status_code != 200 or "<form" not in page.text:
        raise DemoFailed(f"no consent page (HTTP {page.status_code})")
    form = _FormParser()
    form.feed(page.text)
    if form.action is None or "allow" not in form.buttons:
        raise DemoFailed("the consent page has no form with an Allow button")
    data = list(form.fields)
    name, value = form.buttons["allow"]
    if name:
        data.append((name, value))
    return browser.open("POST", urllib.parse.urljoin(page.url, form.action), data=data)


def connect_admin(stack: Stack) -> str:
    """Connect Google as the admin would: sign in to the console, press Connect Google,
    Allow on the consent page, back to /callback."""
    oauth = stack.functions.get("oauth_callback")
    if oauth is None:
        raise DemoFailed("there is no oauth_callback function to connect Google with")
    browser = _Browser()
    console = _consent(browser, browser.open("GET", f"{oauth.url}/signin"))
    csrf = re.search(r'name="csrf" value="([^"]+)"', console.text)
    if console.status_code != 200 or csrf is None:
        raise DemoFailed(f"signing in did not open the console (HTTP {console.status_code})")
    result = _consent(
        browser, browser.open("POST", f"{oauth.url}/start", data={"csrf": csrf.group(1)})
    )
    if result.status_code != 200:
        raise DemoFailed(f"the OAuth callback answered HTTP {result.status_code}")
    return ADMIN_EMAIL


def _write_booking(stack: Stack) -> tuple[str, str]:
    from google.cloud import firestore

    client = firestore.Client(project=processes.PROJECT)
    student_id = f"student-{uuid.uuid4().hex[:8]}"
    booking_id = f"demo-{uuid.uuid4().hex[:12]}"
    preference_id = f"162275027-{uuid.uuid4().hex[:8]}"
    start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    client.collection("users").document(student_id).set(
        {"email": "student@example.test", "name": "Ana Student"}
    )
    client.collection("virtualClasses").document(booking_id).set(
        {
            "bookedById": student_id,
            "preferenceId": preference_id,
            "startTime": start,
            "endTime": start + timedelta(hours=1),
            "classType": "individual",
            "maxParticipants": 1,
            "learningFocus": "conversation",
            "classPrice": 15000,
            "status": "pending",
        }
    )
    return booking_id, preference_id


def _wait_for_booking(booking_id: str, timeout: float = 90.0) -> dict[str, Any]:
    from google.cloud import firestore

    client = firestore.Client(project=processes.PROJECT)
    deadline = time.monotonic() + timeout
    booking: dict[str, Any] = {}
    while time.monotonic() < deadline:
        booking = client.collection("virtualClasses").document(booking_id).get().to_dict() or {}
        if booking.get("status") == "scheduled":
            return booking
        time.sleep(0.5)
    reason = booking.get("schedulingMessage") or booking.get("schedulingReason") or "no reason"
    raise DemoFailed(f"booking {booking_id} was not scheduled within {timeout:.0f} s ({reason})")


def run(stack: Stack) -> None:
    print("1. the admin connects the school's Google account (OAuth consent) ...", flush=True)
    email = connect_admin(stack)
    print(f"   connected as {email}", flush=True)

    if "calendar_maintenance" in stack.functions:
        stack.pubsub_client.publish("calendar-maintenance", [b"{}"])

    print("2. a student books a class ...", flush=True)
    booking_id, preference_id = _write_booking(stack)
    print(f"   booking {booking_id}, preference {preference_id}", flush=True)

    print("3. MercadoPago approves the payment (published to Pub/Sub topic 'payments') ...")
    payment = {"preferenceId": preference_id, "status": "approved", "paymentId": "demo-1"}
    stack.pubsub_client.publish("payments", [json.dumps(payment).encode()])

    booking = _wait_for_booking(booking_id)
    print("4. the class is scheduled:", flush=True)
    print(f"   Meet link      {booking['htmlLink']}", flush=True)
    print(f"   Calendar event {booking['googleEventId']}", flush=True)
    print(f"   starts         {booking['startTime'].isoformat()}", flush=True)

    if "list_events" in stack.functions:
        slots = requests.get(stack.functions["list_events"].url, timeout=30)
        if slots.status_code != 200:
            raise DemoFailed(f"list_events answered HTTP {slots.status_code}")
        print(f"5. busy slots published for the booking page: {len(slots.json())}", flush=True)

    if {"calendar_maintenance", "calendar_webhook"} <= stack.functions.keys():
        print("6. the admin moves the class one hour later, in Google Calendar ...", flush=True)
        moved = _move_in_google_calendar(stack, booking_id, booking)
        print(f"   the booking followed: starts {moved.isoformat()}", flush=True)


def _live_channel(control: Any, timeout: float = 60.0) -> dict[str, Any]:
    """The watch channel calendar_maintenance opened, once its sync handshake arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for channel in control.channels():
            delivered = any(d.get("outcome") == "delivered" for d in channel["deliveries"])
            if not channel["stopped"] and delivered:
                return channel
        time.sleep(0.5)
    raise DemoFailed(f"calendar_maintenance opened no watch channel within {timeout:.0f} s")


def _move_in_google_calendar(stack: Stack, booking_id: str, booking: dict[str, Any]) -> datetime:
    from sandbox.control import SandboxControl

    assert stack.sandbox is not None
    control = SandboxControl(stack.sandbox.url)
    _live_channel(control)
    # What the admin's own Calendar app would do: a PATCH with the admin's token.
    grant = control.issue_token(ADMIN_EMAIL, CLIENT_ID, "https://www.googleapis.com/auth/calendar")
    start = booking["startTime"] + timedelta(hours=1)
    end = booking["endTime"] + timedelta(hours=1)
    url = f"{stack.sandbox.url}/calendar/v3/calendars/primary/events/{booking['googleEventId']}"
    answer = requests.patch(
        url,
        json={"start": {"dateTime": start.isoformat()}, "end": {"dateTime": end.isoformat()}},
        headers={"Authorization": f"Bearer {grant['access_token']}"},
        timeout=30,
    )
    if answer.status_code != 200:
        raise DemoFailed(f"moving the event in the sandbox answered HTTP {answer.status_code}")
    from google.cloud import firestore

    client = firestore.Client(project=processes.PROJECT)
    document = client.collection("virtualClasses").document(booking_id)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = document.get().to_dict() or {}
        if current.get("startTime") == start:
            return start
        time.sleep(0.5)
    raise DemoFailed("the booking did not follow the moved event within 60 s (webhook log)")
