"""The admin's connection in a real browser: headless Chromium, driven by Selenium.

Debian's ``chromium`` and ``chromium-driver`` are used as installed (scripts/install-browser.sh,
run by tests/run.sh); Selenium is given the system driver, so it never downloads one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localstack import processes
from localstack.constants import ADMIN_EMAIL, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI
from shared.google import clients, tokens

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # the tests may run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

pytestmark = pytest.mark.browser


def _chromium() -> str:
    """Chromium's path, or a failure in CI (the test must run there) and a skip elsewhere."""
    chromium = shutil.which("chromium")
    if chromium and Path(CHROMEDRIVER).exists():
        return chromium
    message = (
        "Chromium or its driver is missing: run scripts/install-browser.sh "
        "(Debian's 'chromium' and 'chromium-driver')"
    )
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def headless_chromium(chromium: str, workdir: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = workdir / "chromium-profile"
    profile.mkdir()
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Given the system driver, Selenium Manager never looks for (or downloads) one.
    service = Service(CHROMEDRIVER, log_output=str(workdir / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def function_server(
    sandbox: Any, firestore: Any, tmp_path: Path
) -> Iterator[processes.ManagedProcess]:
    """oauth_callback under functions-framework on a real port, its /callback registered."""
    port = processes.free_port()
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    sandbox.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI, redirect_uri])
    server = processes.start_function(
        "oauth_callback",
        env={
            "GOOGLE_REDIRECT_URI": redirect_uri,
            "SESSION_SIGNING_KEY": "browser-test-session-signing-key-0123456789",
        },
        log_dir=tmp_path,
        port=port,
    )
    try:
        yield server
    finally:
        server.stop()


def test_admin_connects_in_a_real_browser(
    function_server: processes.ManagedProcess, tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    from google.oauth2.credentials import Credentials
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    chromium = _chromium()
    env.setenv("SE_OFFLINE", "true")  # and Selenium Manager stays offline regardless
    callback = f"{function_server.url}/callback"

    with headless_chromium(chromium, tmp_path) as browser:
        wait = WebDriverWait(browser, 30)
        try:
            # Sign in first (only the signed-in admin may connect), then Connect Google.
            browser.get(f"{function_server.url}/")
            wait.until(expected_conditions.element_to_be_clickable((By.ID, "sign-in"))).click()
            wait.until(expected_conditions.element_to_be_clickable((By.ID, "allow"))).click()
            wait.until(
                expected_conditions.element_to_be_clickable(
                    (By.XPATH, "//button[text()='Connect Google']")
                )
            ).click()
            wait.until(expected_conditions.element_to_be_clickable((By.ID, "allow")))
            consent_url = browser.current_url
            hinted_email = browser.find_element(By.ID, "email").get_attribute("value")
            browser.find_element(By.ID, "allow").click()
            wait.until(expected_conditions.url_contains(callback))
            heading = wait.until(
                expected_conditions.presence_of_element_located((By.TAG_NAME, "h1"))
            ).text
            page_text = browser.find_element(By.TAG_NAME, "body").text
            page_source = browser.page_source
            heading_color = browser.find_element(By.TAG_NAME, "h1").value_of_css_property("color")
            console = [entry["message"] for entry in browser.get_log("browser")]
        finally:
            browser.save_screenshot(str(tmp_path / "last-page.png"))

    assert consent_url.startswith(clients.endpoints().auth_uri)
    assert hinted_email == ADMIN_EMAIL  # from login_hint
    assert heading == "Google account connected", page_text
    assert ADMIN_EMAIL in page_text
    # The page's inline style applies (its CSP hash is right) and nothing was blocked.
    assert heading_color == "rgba(17, 99, 41, 1)"
    assert not [line for line in console if "Content Security Policy" in line], console
    stored = tokens.read_refresh_token()
    credentials = Credentials(
        token=None,
        refresh_token=stored.refresh_token,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_uri=clients.endpoints().token_uri,
        scopes=[clients.CALENDAR_SCOPE],
    )
    credentials.refresh(clients.http_request())
    assert credentials.valid
    assert stored.refresh_token not in page_source
    assert stored.refresh_token not in function_server.log_path.read_text()
