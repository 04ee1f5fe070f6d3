"""The admin's console in a real browser: headless Chromium, driven by Selenium.

oauth_callback runs under functions-framework on a real port; sign-in goes through the
sandbox's consent page; the problem bookings live in the Firestore emulator. Set
CLASSCAL_SCREENSHOTS to a folder to keep the screenshots (docs/images has them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from localstack import processes
from localstack.constants import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI
from tests.support.scheduling import next_class_start, read_booking, write_booking
from tests.test_oauth_browser import _chromium, headless_chromium

pytestmark = pytest.mark.browser

SIGNING_KEY = "browser-test-session-signing-key-0123456789"
OTHER_EMAIL = "someone.else@gmail.test"
PHONE = (412, 915)


@pytest.fixture
def console_server(
    sandbox: Any, firestore: Any, connected: Any, tmp_path: Path
) -> Iterator[processes.ManagedProcess]:
    port = processes.free_port()
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    sandbox.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI, redirect_uri])
    server = processes.start_function(
        "oauth_callback",
        env={"GOOGLE_REDIRECT_URI": redirect_uri, "SESSION_SIGNING_KEY": SIGNING_KEY},
        log_dir=tmp_path,
        port=port,
    )
    try:
        yield server
    finally:
        server.stop()


def seed_problems(firestore: Any, sandbox: Any) -> dict[str, Any]:
    """Three bookings that need a person: one can be scheduled now (Google is connected
    again), one lost its Meet conference, one's time is taken by another event."""
    now = datetime.now(UTC)
    taken_start = next_class_start(days=5)
    # Something else sits at the third booking's time on the school calendar.
    from google.oauth2.credentials import Credentials

    from localstack.constants import ADMIN_EMAIL
    from shared.google import clients, tokens
    from shared.stores import oauth_states

    # The connection as the callback records it, beside the stored token.
    oauth_states.record_connection(
        ADMIN_EMAIL, list(clients.OAUTH_SCOPES), tokens.read_refresh_token().version, "primary"
    )
    granted = sandbox.issue_token(ADMIN_EMAIL, CLIENT_ID, clients.CALENDAR_SCOPE)
    service = clients.calendar_service(Credentials(token=granted["access_token"]))
    service.events().insert(
        calendarId="primary",
        body={
            "summary": "Dentist",
            "start": {"dateTime": taken_start.isoformat()},
            "end": {"dateTime": (taken_start + timedelta(hours=1)).isoformat()},
        },
    ).execute()
    common = {"paymentStatus": "approved", "schedulingAttempts": 3}
    # Shown beside them (their real paths are in tests/test_admin_console_lists.py): a
    # refund made in MercadoPago, and a group class whose guest waits to be invited.
    write_booking(
        firestore,
        status="cancelled",
        paymentStatus="refunded",
        paymentId="1500000042",
        paymentAmount=15000,
        paymentCurrency="ARS",
        cancellationReason="refunded",
        cancelledAt=now - timedelta(minutes=20),
        eventDeleted=True,
    )
    write_booking(
        firestore,
        status="scheduled",
        classType="grupal",
        maxParticipants=4,
        guestSyncPending=True,
        guestSyncReason="google_unavailable",
        guestsUpdatedAt=now - timedelta(minutes=10),
        guestInvitations={"guest-1": {"state": "waiting", "email": "bea@students.test"}},
    )
    return {
        "waiting": write_booking(
            firestore,
            schedulingState="waiting",
            schedulingReason="admin_reconnect_required",
            schedulingMessage="Waiting for the school admin to reconnect the school's Google "
            "account.",
            schedulingUpdatedAt=now - timedelta(minutes=5),
            **common,
        ),
        "conference": write_booking(
            firestore,
            schedulingState="failed",
            schedulingReason="conference_failed",
            schedulingMessage="Google created the event but could not create its Meet link.",
            schedulingUpdatedAt=now - timedelta(minutes=30),
            calendarLink="https://calendar.google.com/calendar/event?eid=example",
            **common,
        ),
        "taken": write_booking(
            firestore,
            start=taken_start,
            schedulingState="failed",
            schedulingReason="slot_taken",
            schedulingMessage="The class's time is taken by another event (Dentist).",
            schedulingUpdatedAt=now - timedelta(minutes=60),
            **common,
        ),
    }


def _shot(browser: Any, tmp_path: Path, name: str) -> None:
    browser.save_screenshot(str(tmp_path / f"{name}.png"))
    folder = os.environ.get("CLASSCAL_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        height = browser.execute_script("return document.body.scrollHeight") or PHONE[1]
        browser.set_window_size(PHONE[0], max(PHONE[1], int(height) + 40))
        browser.save_screenshot(str(Path(folder) / f"{name}.png"))
        browser.set_window_size(*PHONE)


def _sign_in(browser: Any, wait: Any, url: str, email: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions

    browser.get(url)
    wait.until(expected_conditions.element_to_be_clickable((By.ID, "sign-in"))).click()
    field = wait.until(expected_conditions.element_to_be_clickable((By.ID, "email")))
    field.clear()
    field.send_keys(email)
    browser.find_element(By.ID, "allow").click()
    wait.until(expected_conditions.presence_of_element_located((By.TAG_NAME, "h1")))


def test_the_admin_signs_in_retries_a_booking_and_signs_out(
    console_server: processes.ManagedProcess,
    firestore: Any,
    sandbox: Any,
    tmp_path: Path,
    env: pytest.MonkeyPatch,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    from localstack.constants import ADMIN_EMAIL

    chromium = _chromium()
    env.setenv("SE_OFFLINE", "true")
    seeded = seed_problems(firestore, sandbox)
    ids = {name: booking.booking_id for name, booking in seeded.items()}

    with headless_chromium(chromium, tmp_path) as browser:
        browser.set_window_size(*PHONE)
        wait = WebDriverWait(browser, 30)
        browser.get(console_server.url + "/")
        anonymous_text = browser.find_element(By.TAG_NAME, "body").text
        _shot(browser, tmp_path, "console-anonymous")

        _sign_in(browser, wait, console_server.url + "/", ADMIN_EMAIL)
        wait.until(expected_conditions.presence_of_element_located((By.ID, "problems")))
        listed = [e.get_attribute("id") for e in browser.find_elements(By.CSS_SELECTOR, ".problem")]
        reasons = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".problem .reason")]
        console_text = browser.find_element(By.TAG_NAME, "body").text
        refund_cards = browser.find_elements(By.CSS_SELECTOR, "#refunds .refund")
        guest_cards = browser.find_elements(By.CSS_SELECTOR, "#guests .guests")
        _shot(browser, tmp_path, "console-signed-in")
        console_log = [entry["message"] for entry in browser.get_log("browser")]

        card = browser.find_element(By.ID, f"booking-{ids['waiting']}")
        card.find_element(By.TAG_NAME, "button").click()
        notice = wait.until(expected_conditions.presence_of_element_located((By.ID, "notice")))
        notice_text = notice.text
        after_retry = [
            e.get_attribute("id") for e in browser.find_elements(By.CSS_SELECTOR, ".problem")
        ]
        _shot(browser, tmp_path, "console-after-retry")

        browser.find_element(By.XPATH, "//button[text()='Sign out']").click()
        wait.until(expected_conditions.presence_of_element_located((By.ID, "sign-in")))
        signed_out_text = browser.find_element(By.TAG_NAME, "body").text
        browser.get(console_server.url + "/")
        still_out = browser.find_element(By.TAG_NAME, "body").text

    assert "classcal is connected to Google" in anonymous_text
    assert ADMIN_EMAIL not in anonymous_text
    assert listed == [f"booking-{ids[n]}" for n in ("waiting", "conference", "taken")]
    assert reasons == [
        "Waiting for Google to be reconnected",
        "Google could not create the Meet link",
        "Its time was already taken",
    ]
    assert "slot_taken" in console_text
    assert "conference_failed" in console_text
    assert ADMIN_EMAIL in console_text
    assert len(refund_cards) == 1
    assert "MercadoPago payment 1500000042" in console_text
    assert len(guest_cards) == 1
    assert "1 guest to invite" in console_text
    assert "bea@students.test" not in console_text  # how many, not who
    assert not [line for line in console_log if "Content Security Policy" in line], console_log
    assert "The class was scheduled" in notice_text
    assert after_retry == [f"booking-{ids[n]}" for n in ("conference", "taken")]
    assert read_booking(firestore, ids["waiting"])["status"] == "scheduled"
    assert "Sign in with Google" in signed_out_text
    assert "classcal console" not in still_out


def test_another_account_is_refused_in_a_real_browser(
    console_server: processes.ManagedProcess, tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    from selenium.webdriver.common.by import By

    chromium = _chromium()
    env.setenv("SE_OFFLINE", "true")

    with headless_chromium(chromium, tmp_path) as browser:
        from selenium.webdriver.support.ui import WebDriverWait

        _sign_in(browser, WebDriverWait(browser, 30), console_server.url + "/", OTHER_EMAIL)
        refused = browser.find_element(By.TAG_NAME, "body").text
        browser.get(console_server.url + "/")
        after = browser.find_element(By.TAG_NAME, "body").text
        cookies = [c["name"] for c in browser.get_cookies()]

    assert "may not use classcal" in refused
    assert "classcal console" not in after
    assert "__Host-classcal-session" not in cookies
