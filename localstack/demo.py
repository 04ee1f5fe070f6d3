"""The demo that ``./deploy.sh local --once`` runs against the local stack.

1. The admin connects the school's Google account through the real OAuth function and
   the sandbox's consent page (the form is submitted as a browser would).
2. A student's booking is written to Firestore, as the booking page does.
3. MercadoPago (the sandbox's) approves the payment and notifies the signed webhook,
   which reads the payment back from MercadoPago and publishes it to ``payments``.
4. classcal schedules the class: the booking gets its Calendar event and Meet link.
5. A second student pays for the same hour and is told the slot is taken (no event,
   nothing personal in the message); another student's open checkout holds its hour.
   The public busy-slots endpoint, which reads only Firestore, shows the class as
   busy and the checkout as tentative.
6. The admin moves the class in Google Calendar; the sandbox's push notification
   reaches the webhook, calendar_sync lists the change, and the booking follows.
7. The school's platform reschedules the class through ``booking-changes``: the same
   event moves, with the same Meet link, and the booking follows.
8. A group class is booked and paid; two students join it with its access code through
   the public join_class function (signed in with Google: ID tokens the sandbox signs),
   and guest_invitations makes both attendees of its event in the sandbox's calendar.
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

from localstack.constants import ADMIN_EMAIL, CLIENT_ID, MAINTENANCE, PROJECT
from localstack.stack import Stack


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


def check_delegation(stack: Stack) -> str:
    """Service-account mode: nobody connects; the connect page says whether Google lets
    the service account act as the admin (its JSON form, as a monitor would read it)."""
    oauth = stack.functions.get("oauth_callback")
    if oauth is None:
        raise DemoFailed("there is no oauth_callback function to check the delegation with")
    answer = requests.get(f"{oauth.url}/", headers={"Accept": "application/json"}, timeout=30)
    status = answer.json() if answer.status_code == 200 else {}
    if status.get("state") != "connected":
        raise DemoFailed(
            f"the delegation does not work (HTTP {answer.status_code}): "
            f"{status.get('problem') or 'no status'}"
        )
    signing = "keyless, signed by IAM signJwt" if status["keyless"] else "with a key file"
    return f"{status['serviceAccount']} (client id {status['clientId']}, {signing})"


def prepare_google(stack: Stack) -> None:
    """Make the school's Google account usable in this stack's mode, and say how."""
    if stack.auth_mode == "oauth":
        print("1. the admin connects the school's Google account (OAuth consent) ...", flush=True)
        print(f"   connected as {connect_admin(stack)}", flush=True)
        return
    print("1. the Workspace admin delegated the calendar to the service account ...", flush=True)
    print(f"   {check_delegation(stack)} acts as {ADMIN_EMAIL}", flush=True)


def _class_start(hours: int = 0) -> datetime:
    start = datetime.now(UTC) + timedelta(days=2, hours=hours)
    return start.replace(minute=0, second=0, microsecond=0)


def _write_booking(stack: Stack, start: datetime | None = None, **fields: Any) -> tuple[str, str]:
    from google.cloud import firestore

    client = firestore.Client(project=PROJECT)
    student_id = f"student-{uuid.uuid4().hex[:8]}"
    booking_id = f"demo-{uuid.uuid4().hex[:12]}"
    preference_id = f"162275027-{uuid.uuid4().hex[:8]}"
    start = start or _class_start()
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
            **fields,
        }
    )
    return booking_id, preference_id


def _pay_with_mercadopago(stack: Stack, booking_id: str, preference_id: str) -> int:
    """The student pays at MercadoPago's checkout: a payment whose external_reference is
    the booking, approved. MercadoPago then notifies the webhook (signed); without a
    webhook in the stack the payment is published by hand, as a school without it would."""
    from sandbox.mercadopago.client import MercadoPagoControl

    assert stack.sandbox is not None
    mercadopago = MercadoPagoControl(stack.sandbox.url)
    payment = mercadopago.create_payment(
        amount=15000,
        currency="ARS",
        status="approved",
        external_reference=booking_id,
        preference_id=preference_id,
    )
    if "payment_webhook" not in stack.functions:
        message = {"preferenceId": preference_id, "status": "approved", "paymentId": "demo-1"}
        stack.pubsub_client.publish("payments", [json.dumps(message).encode()])
        return int(payment["id"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        mine = [d for d in mercadopago.deliveries() if d["payment_id"] == str(payment["id"])]
        if any(d["outcome"] == "delivered" for d in mine):
            return int(payment["id"])
        time.sleep(0.2)
    raise DemoFailed(
        f"MercadoPago's notification of payment {payment['id']} was not taken by the webhook "
        f"within 30 s ({mine[-1] if mine else 'not sent'}; see the payment_webhook log)"
    )


def _wait_for_booking(booking_id: str, timeout: float = 90.0) -> dict[str, Any]:
    from google.cloud import firestore

    client = firestore.Client(project=PROJECT)
    deadline = time.monotonic() + timeout
    booking: dict[str, Any] = {}
    while time.monotonic() < deadline:
        booking = client.collection("virtualClasses").document(booking_id).get().to_dict() or {}
        if booking.get("status") == "scheduled":
            return booking
        time.sleep(0.5)
    reason = booking.get("schedulingMessage") or booking.get("schedulingReason") or "no reason"
    raise DemoFailed(f"booking {booking_id} was not scheduled within {timeout:.0f} s ({reason})")


def _wait_for_refusal(booking_id: str, timeout: float = 60.0) -> dict[str, Any]:
    from google.cloud import firestore

    client = firestore.Client(project=PROJECT)
    deadline = time.monotonic() + timeout
    booking: dict[str, Any] = {}
    while time.monotonic() < deadline:
        booking = client.collection("virtualClasses").document(booking_id).get().to_dict() or {}
        # Refused; with MercadoPago the payment is also refunded, and the booking cancelled.
        if booking.get("schedulingReason") in ("slot_taken", "slot_taken_refunded"):
            return booking
        if booking.get("status") == "scheduled":
            raise DemoFailed(f"booking {booking_id} was scheduled over a taken slot")
        time.sleep(0.5)
    raise DemoFailed(f"booking {booking_id} was not refused within {timeout:.0f} s")


def _wait_for_slots(
    stack: Stack, wanted: list[tuple[datetime, str]], timeout: float = 60.0
) -> list[dict[str, Any]]:
    """list_events until it shows every (start, status) wanted: the class reaches the
    mirror through Google's push notification and the webhook's sync."""
    deadline = time.monotonic() + timeout
    slots: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        answer = requests.get(stack.functions["list_events"].url, timeout=30)
        if answer.status_code == 200:
            slots = answer.json()
            shown = {(datetime.fromisoformat(s["start"]["dateTime"]), s["status"]) for s in slots}
            if all((start, status) in shown for start, status in wanted):
                return slots
        time.sleep(1.0)
    raise DemoFailed(f"list_events did not show {wanted} within {timeout:.0f} s: {slots}")


def run(stack: Stack) -> None:
    prepare_google(stack)

    if "calendar_maintenance" in stack.functions:
        stack.pubsub_client.publish(MAINTENANCE, [b"{}"])

    print("2. a student books a class ...", flush=True)
    booking_id, preference_id = _write_booking(stack)
    print(f"   booking {booking_id}, preference {preference_id}", flush=True)

    print("3. MercadoPago approves the payment and calls the webhook ...", flush=True)
    payment_id = _pay_with_mercadopago(stack, booking_id, preference_id)
    print(f"   MercadoPago payment {payment_id}: approved, notified, published", flush=True)

    booking = _wait_for_booking(booking_id)
    print("4. the class is scheduled:", flush=True)
    print(f"   Meet link      {booking['htmlLink']}", flush=True)
    print(f"   Calendar event {booking['googleEventId']}", flush=True)
    print(f"   starts         {booking['startTime'].isoformat()}", flush=True)

    print("5. a second student pays for the same hour ...", flush=True)
    rival_id, rival_preference = _write_booking(stack)
    _pay_with_mercadopago(stack, rival_id, rival_preference)
    rival = _wait_for_refusal(rival_id)
    print(f"   refused: {rival['schedulingReason']}: {rival['schedulingMessage']}", flush=True)
    checkout = _class_start(hours=3)
    _write_booking(stack, start=checkout, createdAt=datetime.now(UTC))
    print(f"   another student opened a checkout for {checkout.isoformat()}", flush=True)

    if "list_events" in stack.functions:
        wanted = [(booking["startTime"], "confirmed"), (checkout, "tentative")]
        slots = _wait_for_slots(stack, wanted)
        print(f"   busy slots published for the booking page ({len(slots)}):", flush=True)
        for slot in slots:
            print(f"     {slot['start']['dateTime']}  {slot['status']}", flush=True)

    if {"calendar_maintenance", "calendar_webhook", "calendar_sync"} <= stack.functions.keys():
        print("6. the admin moves the class one hour later, in Google Calendar ...", flush=True)
        moved = _move_in_google_calendar(stack, booking_id, booking)
        print(f"   the booking followed: starts {moved.isoformat()}", flush=True)

    if "booking_changes" in stack.functions:
        print("7. the platform moves the class to the next day (topic 'booking-changes') ...")
        _reschedule_through_the_platform(stack, booking_id)

    if {"join_class", "guest_invitations"} <= stack.functions.keys():
        _group_class(stack)


GUESTS = ("bea.guest@example.test", "carlos.guest@example.test")


def _group_class(stack: Stack) -> None:
    from google.cloud import firestore

    from sandbox.control import SandboxControl

    print("8. a group class for three is booked and paid ...", flush=True)
    start = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    booking_id, preference_id = _write_booking(
        stack,
        classType="grupal",
        maxParticipants=3,
        startTime=start,
        endTime=start + timedelta(hours=1),
    )
    _pay_with_mercadopago(stack, booking_id, preference_id)
    booking = _wait_for_booking(booking_id)
    print("   scheduled; its access code goes to two students", flush=True)
    assert stack.sandbox is not None
    control = SandboxControl(stack.sandbox.url)
    client = firestore.Client(project=PROJECT)
    for email in GUESTS:
        user_id = f"guest-{uuid.uuid4().hex[:8]}"
        client.collection("users").document(user_id).set({"email": email})
        # The school's site signs the student in with Google; the sandbox signs the token.
        token = control.issue_token(
            email, CLIENT_ID, ["openid", "https://www.googleapis.com/auth/userinfo.email"]
        )["id_token"]
        answer = requests.post(
            stack.functions["join_class"].url,
            json={"accessCode": booking["accessCode"]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        if answer.status_code != 200:
            raise DemoFailed(f"join_class answered HTTP {answer.status_code}: {answer.text}")
        seats = answer.json()
        print(
            f"   {email} joined: {seats['currentParticipants']} of {seats['maxParticipants']}",
            flush=True,
        )
    attendees = _wait_for_attendees(control, booking["googleEventId"], set(GUESTS))
    print(f"   attendees of the class's event in the sandbox: {', '.join(attendees)}", flush=True)


def _wait_for_attendees(
    control: Any, event_id: str, wanted: set[str], timeout: float = 60.0
) -> list[str]:
    deadline = time.monotonic() + timeout
    emails: list[str] = []
    while time.monotonic() < deadline:
        for event in control.events(ADMIN_EMAIL):
            if event["id"] == event_id:
                emails = [a["email"] for a in event.get("attendees", [])]
        if wanted <= set(emails):
            return emails
        time.sleep(0.5)
    raise DemoFailed(
        f"the guests were not attendees of the event within {timeout:.0f} s "
        f"(attendees: {emails}; see the guest_invitations log)"
    )


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

    client = firestore.Client(project=PROJECT)
    document = client.collection("virtualClasses").document(booking_id)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = document.get().to_dict() or {}
        if current.get("startTime") == start:
            return start
        time.sleep(0.5)
    raise DemoFailed(
        "the booking did not follow the moved event within 60 s "
        "(calendar_webhook and calendar_sync logs)"
    )


def _reschedule_through_the_platform(stack: Stack, booking_id: str) -> None:
    from google.cloud import firestore

    from sandbox.control import SandboxControl

    client = firestore.Client(project=PROJECT)
    document = client.collection("virtualClasses").document(booking_id)
    before = document.get().to_dict() or {}
    start = before["startTime"] + timedelta(days=1)
    change = {
        "action": "reschedule",
        "bookingId": booking_id,
        "startTime": start.isoformat(),
        "endTime": (before["endTime"] + timedelta(days=1)).isoformat(),
        "requestedAt": datetime.now(UTC).isoformat(),
    }
    stack.pubsub_client.publish("booking-changes", [json.dumps(change).encode()])
    deadline = time.monotonic() + 60
    current: dict[str, Any] = {}
    while time.monotonic() < deadline:
        current = document.get().to_dict() or {}
        if (current.get("reschedule") or {}).get("state") in ("done", "refused", "failed"):
            break
        time.sleep(0.5)
    request = current.get("reschedule") or {}
    if request.get("state") != "done":
        why = request.get("message") or request.get("state") or "no answer within 60 s"
        raise DemoFailed(f"the reschedule did not happen: {why}")
    assert stack.sandbox is not None
    [event] = [
        e
        for e in SandboxControl(stack.sandbox.url).events(ADMIN_EMAIL)
        if e["id"] == before["googleEventId"]
    ]
    if event.get("hangoutLink") != before["htmlLink"] or current["htmlLink"] != before["htmlLink"]:
        raise DemoFailed("the rescheduled class has another Meet link than before")
    print(f"   the same event     {event['id']}", flush=True)
    print(f"   the same Meet link {current['htmlLink']}", flush=True)
    print(f"   starts             {current['startTime'].isoformat()}", flush=True)
