"""oauth_callback against the Google sandbox and the Firestore emulator.

The function runs in functions-framework's real app (its test client); the consent is
given on the sandbox's real consent form over HTTP, as a browser would submit it.
"""

from __future__ import annotations

import base64
import hashlib
import html.parser
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import functions_framework
import pytest
import requests

from localstack import processes
from localstack.constants import ADMIN_EMAIL, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI
from shared.core.config import reset_config
from shared.core.logs import JsonFormatter
from shared.domain import connection
from shared.google import calendar, clients, tokens
from shared.stores import sync_state

SOURCE = Path(__file__).resolve().parent.parent / "functions" / "oauth_callback" / "main.py"
OTHER_EMAIL = "someone.else@gmail.test"


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def oauthlib_env(env: pytest.MonkeyPatch) -> None:
    """Undo the oauthlib switches the code sets, so no test inherits another's."""
    for name in ("OAUTHLIB_INSECURE_TRANSPORT", "OAUTHLIB_RELAX_TOKEN_SCOPE"):
        env.setenv(name, "")
        env.delenv(name)


SIGNING_KEY = "test-session-signing-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def session_key(env: pytest.MonkeyPatch) -> None:
    env.setenv("SESSION_SIGNING_KEY", SIGNING_KEY)
    reset_config()
    connection.forget_checks()  # each test is a fresh instance


@pytest.fixture
def client(firestore: Any) -> Any:
    return functions_framework.create_app("oauth_callback", str(SOURCE)).test_client()


def flow_cookie(client: Any) -> str | None:
    found = client.get_cookie("__Host-classcal-flow")
    return found.value if found else None


def session_cookie(client: Any) -> str | None:
    found = client.get_cookie("__Host-classcal-session")
    return found.value if found else None


def sign_in(client: Any, email: str = ADMIN_EMAIL) -> Any:
    """Sign in through the sandbox's consent page; the callback's answer."""
    response = client.get("/signin")
    assert response.status_code == 302, response.get_data(as_text=True)
    return client.get(local_path(consent(response.headers["Location"], email=email)))


def csrf_of(client: Any) -> str:
    page = client.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


@pytest.fixture
def log_lines(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The test's log records so far, as the JSON lines classcal's formatter writes."""
    caplog.set_level(logging.DEBUG)
    formatter = JsonFormatter()
    return lambda: [formatter.format(record) for record in caplog.records]


class _Form(html.parser.HTMLParser):
    """The sandbox consent form: its action, hidden fields, email and scope checkboxes."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: list[tuple[str, str]] = []
        self.checkboxes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "checkbox":
            if "checked" in a:
                self.checkboxes.append(a["value"])
        elif tag == "input" and a.get("name"):
            self.fields.append((a["name"], a.get("value", "")))


def consent(
    authorize_url: str,
    *,
    email: str = ADMIN_EMAIL,
    action: str = "allow",
    untick: tuple[str, ...] = (),
) -> str:
    """Open Google's (the sandbox's) consent page, submit it, return the redirect URL."""
    page = requests.get(authorize_url, timeout=10)
    assert page.status_code == 200, page.text
    form = _Form()
    form.feed(page.text)
    data = [(k, email if k == "email" else v) for k, v in form.fields]
    data += [("scope", s) for s in form.checkboxes if s not in untick]
    data.append(("action", action))
    answer = requests.post(
        urljoin(authorize_url, form.action), data=data, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def start(client: Any) -> str:
    """Sign in (once) and press "Reconnect Google": Google's consent URL."""
    if session_cookie(client) is None:
        assert sign_in(client).status_code == 303
    response = client.post("/start", data={"csrf": csrf_of(client)})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def connect(client: Any, **consent_options: Any) -> tuple[Any, str]:
    """The whole flow through the test client; returns the callback's answer and URL."""
    callback_url = consent(start(client), **consent_options)
    assert callback_url.startswith(REDIRECT_URI), callback_url
    return client.get(local_path(callback_url)), callback_url


class Browser:
    """Cookies kept by hand over plain HTTP (requests never sends a Secure cookie there,
    which browsers do for 127.0.0.1)."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def open(self, method: str, url: str, **options: Any) -> Any:
        header = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
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
            content = rest.split(";", 1)[0]
            if "Max-Age=0" in value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = content
        return response


def connect_over_http(base: str, email: str = ADMIN_EMAIL) -> Any:
    """Sign in and connect against a running server; the callback's answer."""
    browser = Browser()
    signin = browser.open("GET", f"{base}/signin")
    assert browser.open("GET", consent(signin.headers["Location"])).status_code == 303
    page = browser.open("GET", f"{base}/").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf, page
    started = browser.open("POST", f"{base}/start", data={"csrf": csrf.group(1)})
    return browser.open("GET", consent(started.headers["Location"], email=email))


def text(response: Any) -> str:
    return response.get_data(as_text=True)


def assert_safe_page(response: Any) -> None:
    headers = response.headers
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp  # nothing but default-src 'none' for scripts
    assert "unsafe-inline" not in csp


def versions() -> list[tuple[int, str]]:
    return [(int(v.name.rsplit("/", 1)[1]), v.state) for v in tokens.list_versions()]


def refreshes(refresh_token: str) -> bool:
    from google.auth.exceptions import RefreshError
    from google.oauth2.credentials import Credentials

    credentials = Credentials(
        token=None,
        refresh_token=refresh_token,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_uri=clients.endpoints().token_uri,
        scopes=[clients.CALENDAR_SCOPE],
    )
    try:
        credentials.refresh(clients.http_request())
    except RefreshError:
        return False
    return True


def revoke_at_google(sandbox: Any, token: str) -> None:
    answer = requests.post(f"{sandbox_url()}/revoke", data={"token": token}, timeout=10)
    assert answer.status_code == 200, answer.text


def sandbox_url() -> str:
    url = clients.endpoints().token_uri
    return url.rsplit("/", 1)[0]


def seed_events(count_future: int, count_past: int) -> None:
    """Events on the admin's primary calendar, written with a grant that is not stored."""
    from google.oauth2.credentials import Credentials

    from sandbox.control import SandboxControl

    control = SandboxControl(sandbox_url())
    granted = control.issue_token(ADMIN_EMAIL, CLIENT_ID, clients.CALENDAR_SCOPE)
    service = clients.calendar_service(Credentials(token=granted["access_token"]))
    now = datetime.now(UTC)
    starts = [now + timedelta(days=i + 1) for i in range(count_future)]
    starts += [now - timedelta(days=i + 2) for i in range(count_past)]
    for begin in starts:
        body = {
            "summary": "Clase",
            "start": {"dateTime": begin.isoformat()},
            "end": {"dateTime": (begin + timedelta(hours=1)).isoformat()},
        }
        service.events().insert(calendarId="primary", body=body).execute()


def connection_record(firestore: Any) -> dict[str, Any] | None:
    return firestore.collection("settings").document("googleConnection").get().to_dict()


def requests_count(sandbox: Any, name: str) -> int:
    return int(sandbox.stats()["requests"].get(name, 0))


# --- /start --------------------------------------------------------------------------------


def test_start_redirects_to_consent_with_pkce_and_keeps_the_verifier_in_a_signed_cookie(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    from shared.core import signing

    assert sign_in(client).status_code == 303
    response = client.post("/start", data={"csrf": csrf_of(client)})

    assert response.status_code == 302
    assert_safe_page(response)
    [set_cookie] = response.headers.getlist("Set-Cookie")
    assert set_cookie.startswith("__Host-classcal-flow=")
    for attribute in ("Path=/", "Secure", "HttpOnly", "SameSite=Lax", "Max-Age=600"):
        assert attribute in set_cookie
    location = response.headers["Location"]
    assert location.startswith(clients.endpoints().auth_uri + "?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["response_type"] == "code"
    assert set(query["scope"].split()) == set(clients.OAUTH_SCOPES)
    assert query["access_type"] == "offline"
    assert query["prompt"] == "consent"
    assert query["login_hint"] == ADMIN_EMAIL
    assert query["code_challenge_method"] == "S256"
    assert "include_granted_scopes" not in query
    key = signing.derive_key(SIGNING_KEY.encode(), "classcal-oauth-flow")
    stored = signing.unseal(flow_cookie(client), key, "classcal-oauth-flow")
    assert stored is not None
    assert stored["s"] == query["state"]
    verifier = stored["v"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert challenge.decode().rstrip("=") == query["code_challenge"]
    lifetime = datetime.fromtimestamp(stored["exp"], UTC) - datetime.now(UTC)
    assert timedelta(minutes=9) < lifetime <= timedelta(minutes=10)
    assert verifier not in text(response)
    # Starting a flow writes nothing: the state lives in the browser's signed cookie.
    assert list(firestore.collection("oauthStates").stream()) == []


def test_each_start_gets_its_own_state(sandbox: Any, client: Any) -> None:
    first, second = start(client), start(client)

    state_of = lambda url: parse_qs(urlsplit(url).query)["state"][0]  # noqa: E731
    assert state_of(first) != state_of(second)


def test_start_outside_sandbox_mode_points_at_google_over_strict_transport(
    client: Any,
) -> None:
    import os

    response = client.get("/signin")  # the start of every flow: sign-in comes first
    location = response.headers["Location"]

    assert location.startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    assert "OAUTHLIB_INSECURE_TRANSPORT" not in os.environ


# --- /callback: success -------------------------------------------------------------------


def test_good_flow_stores_the_token_and_proves_it_with_a_calendar_call(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    seed_events(count_future=3, count_past=2)

    response, _ = connect(client)

    body = text(response)
    assert response.status_code == 200, body
    assert_safe_page(response)
    assert "Google account connected" in body
    assert ADMIN_EMAIL in body
    assert "primary" in body
    assert re.search(r"Upcoming events it can see</dt><dd>3<", body), body
    stored = tokens.read_refresh_token()
    assert refreshes(stored.refresh_token)
    assert versions() == [(1, "ENABLED")]
    record = connection_record(firestore)
    assert record is not None
    assert record["email"] == ADMIN_EMAIL
    assert set(record["scopes"]) == set(clients.OAUTH_SCOPES)
    assert record["secretVersion"] == stored.version
    assert record["calendarId"] == "primary"
    assert abs(record["connectedAt"] - datetime.now(UTC)) < timedelta(minutes=1)
    assert stored.refresh_token not in json.dumps(record, default=str)
    # One list proves the grant; the first full sync lists the calendar twice more (its
    # changes, and the busy-time mirror's horizon), so busy slots are served at once.
    assert requests_count(sandbox, "calendar.events.list") == 3
    assert sync_state.sync_status("primary").get("mirrorRebuiltAt") is not None


def test_admin_email_matches_whatever_its_case(
    sandbox: Any, client: Any, env: pytest.MonkeyPatch
) -> None:
    env.setenv("ADMIN_EMAIL", ADMIN_EMAIL.upper())
    reset_config()

    response, _ = connect(client, email=ADMIN_EMAIL)

    assert response.status_code == 200, text(response)
    assert versions() == [(1, "ENABLED")]


# --- /callback: refused -------------------------------------------------------------------


def assert_nothing_stored(firestore: Any) -> None:
    assert versions() == []
    assert connection_record(firestore) is None


def test_wrong_account_gets_403_nothing_stored_and_the_grant_revoked(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    response, _ = connect(client, email=OTHER_EMAIL)

    body = text(response)
    assert response.status_code == 403
    assert_safe_page(response)
    assert "not the school" in body
    assert OTHER_EMAIL in body
    assert ADMIN_EMAIL in body
    assert_nothing_stored(firestore)
    assert requests_count(sandbox, "oauth.revoke") == 1


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"bad_signature": True}, id="bad-signature"),
        pytest.param({"aud": "someone-else.apps.googleusercontent.com"}, id="audience"),
        pytest.param({"iss": "https://accounts.evil.test"}, id="issuer"),
        pytest.param({"exp_offset": -7200}, id="expired"),
        pytest.param({"email_verified": False}, id="email-unverified"),
    ],
)
def test_tampered_id_token_is_refused_and_nothing_revoked(
    sandbox: Any, client: Any, firestore: Any, knobs: dict[str, Any]
) -> None:
    authorize_url = start(client)  # signed in before the id_tokens are tampered with
    sandbox.set_oauth(id_token=knobs)

    response = client.get(local_path(consent(authorize_url)))

    assert response.status_code == 403, text(response)
    assert_safe_page(response)
    assert "could not be confirmed" in text(response)
    assert_nothing_stored(firestore)
    # Not revoked: an unverified identity may be the admin's own grant, and revoking it
    # would withdraw the admin's stored connection at Google too.
    assert requests_count(sandbox, "oauth.revoke") == 0


def test_unticked_calendar_scope_says_to_tick_it_and_keeps_the_earlier_connection(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    first, _ = connect(client)
    assert first.status_code == 200
    earlier = tokens.read_refresh_token()

    response, _ = connect(client, untick=(clients.CALENDAR_SCOPE,))

    body = text(response)
    assert response.status_code == 400
    assert_safe_page(response)
    assert "tick every box" in body
    assert versions() == [(1, "ENABLED")]
    assert refreshes(earlier.refresh_token)  # not revoked: it is the admin's working grant
    assert requests_count(sandbox, "oauth.revoke") == 0


def test_missing_refresh_token_says_how_to_get_one(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    sandbox.set_oauth(omit_refresh_token=True)

    response, _ = connect(client)

    body = text(response)
    assert response.status_code == 400
    assert connection.PERMISSIONS_URL in body
    assert "remove classcal&#x27;s access" in body
    assert_nothing_stored(firestore)


def test_denied_consent_explains_and_spends_the_state(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    authorize_url = start(client)
    denied = consent(authorize_url, action="deny")
    assert "error=access_denied" in denied

    response = client.get(local_path(denied))

    assert response.status_code == 400
    assert_safe_page(response)
    assert "chose not to" in text(response)
    assert_nothing_stored(firestore)
    # The state cannot be used afterwards with a code from a later consent.
    state = parse_qs(urlsplit(denied).query)["state"][0]
    replay = client.get(f"/callback?code=4/0-anything&state={state}")
    assert replay.status_code == 400
    assert "already used" in text(replay)


def test_other_google_error_is_named_in_plain_words(sandbox: Any, client: Any) -> None:
    response = client.get("/callback?error=server_error&state=nothing-we-started-xxxxx")

    assert response.status_code == 400
    assert "server_error" in text(response)


def test_forged_state_is_refused_before_any_token_exchange(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    callback_url = consent(start(client))
    forged = re.sub(r"state=[^&]+", "state=" + "A" * 43, callback_url)

    response = client.get(local_path(forged))

    assert response.status_code == 400
    assert_safe_page(response)
    assert "did not start this sign-in" in text(response)
    # Only the admin's sign-in exchanged a code; the connect callback exchanged none.
    assert requests_count(sandbox, "oauth.token.authorization_code") == 1
    assert_nothing_stored(firestore)


@pytest.mark.parametrize("state", ["", "short", "<script>alert(1)</script>" * 3])
def test_malformed_state_is_refused(sandbox: Any, client: Any, state: str) -> None:
    response = client.get("/callback", query_string={"code": "4/0-x", "state": state})

    assert response.status_code == 400
    assert "<script>" not in text(response)


def reseal_flow(client: Any, **changes: Any) -> None:
    """Put the flow cookie back signed with the real key, with some values changed."""
    import time

    from shared.core import signing

    key = signing.derive_key(SIGNING_KEY.encode(), "classcal-oauth-flow")
    payload = signing.unseal(flow_cookie(client), key, "classcal-oauth-flow")
    assert payload is not None
    issued = changes.pop("issued", time.time())
    payload = {k: v for k, v in payload.items() if k not in ("iat", "exp")} | changes
    value = signing.seal(payload, key, "classcal-oauth-flow", 600, now=issued)
    client.set_cookie("__Host-classcal-flow", value, secure=True, httponly=True)


def test_expired_state_is_refused(sandbox: Any, client: Any, firestore: Any) -> None:
    import time

    authorize_url = start(client)
    reseal_flow(client, issued=time.time() - 601)
    callback_url = consent(authorize_url)

    response = client.get(local_path(callback_url))

    assert response.status_code == 400
    assert "ten minutes" in text(response)
    # Only the admin's sign-in exchanged a code; the connect callback exchanged none.
    assert requests_count(sandbox, "oauth.token.authorization_code") == 1
    assert_nothing_stored(firestore)


def test_replayed_callback_is_refused(sandbox: Any, client: Any, firestore: Any) -> None:
    first, callback_url = connect(client)
    assert first.status_code == 200

    replay = client.get(local_path(callback_url))

    assert replay.status_code == 400
    assert "already used" in text(replay)
    assert versions() == [(1, "ENABLED")]
    # The sign-in's exchange and the first callback's; the replay exchanged none.
    assert requests_count(sandbox, "oauth.token.authorization_code") == 2


def test_used_state_keeps_no_verifier(sandbox: Any, client: Any, firestore: Any) -> None:
    response, callback_url = connect(client)
    assert response.status_code == 200
    state = parse_qs(urlsplit(callback_url).query)["state"][0]

    stored = (
        firestore.collection("oauthStates")
        .document(hashlib.sha256(state.encode()).hexdigest())
        .get()
        .to_dict()
    )

    assert "codeVerifier" not in stored
    assert stored["usedAt"] is not None


def test_the_code_is_exchanged_with_the_stored_verifier(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    # A different verifier than the one behind the challenge: Google (the sandbox)
    # must refuse the exchange, which proves the verifier is what the callback sends.
    authorize_url = start(client)
    reseal_flow(client, v="x" * 64)

    response = client.get(local_path(consent(authorize_url)))

    assert response.status_code == 400
    assert "Google did not accept this sign-in" in text(response)
    assert_nothing_stored(firestore)


def test_missing_code_is_refused(sandbox: Any, client: Any) -> None:
    state = parse_qs(urlsplit(start(client)).query)["state"][0]

    response = client.get("/callback?state=" + state)

    assert response.status_code == 400
    assert "incomplete" in text(response)


# --- /callback: Google or storage failing ----------------------------------------------------


def test_token_endpoint_down_gives_try_again_page(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    callback_url = consent(start(client))
    sandbox.fault("POST", r"^/token$", 503, "backendError", count=1)

    response = client.get(local_path(callback_url))

    assert response.status_code == 503
    assert_safe_page(response)
    assert "try again" in text(response).lower()
    assert_nothing_stored(firestore)


def test_secret_manager_down_gives_try_again_page(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    callback_url = consent(start(client))
    # Permission denied: Secret Manager's client does not retry it, so the test is quick.
    sandbox.fault("POST", r":addVersion$", 403, "PERMISSION_DENIED", count=1)

    response = client.get(local_path(callback_url))

    assert response.status_code == 503
    assert_safe_page(response)
    assert "try again" in text(response).lower()
    assert connection_record(firestore) is None


def test_calendar_check_failing_says_so_but_keeps_the_connection(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    callback_url = consent(start(client))
    sandbox.fault("GET", r"/calendars/.*/events$", 404, "notFound", count=1)

    response = client.get(local_path(callback_url))

    body = text(response)
    assert response.status_code == 502
    assert "could not be read" in body
    assert "CALENDAR_ID" in body
    assert versions() == [(1, "ENABLED")]


# --- a second connection ---------------------------------------------------------------------


@pytest.mark.slow
def test_second_connection_replaces_the_token_and_a_running_instance_picks_it_up(
    sandbox: Any, client: Any, firestore: Any, tmp_path: Path
) -> None:
    # Arrange: a first connection, and this process acting as a running create_event
    # instance that has read the first token and holds an access token from it.
    first, _ = connect(client)
    assert first.status_code == 200
    old = tokens.read_refresh_token()
    event = calendar.insert_event(
        {
            "summary": "Clase",
            "start": {"dateTime": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
            "end": {"dateTime": (datetime.now(UTC) + timedelta(days=1, hours=1)).isoformat()},
        },
        send_updates="none",
    )
    # The reconnection happens on another instance: a real server on its own port.
    port = processes.free_port()
    other_redirect = f"http://127.0.0.1:{port}/callback"
    sandbox.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI, other_redirect])
    server = processes.start_function(
        "oauth_callback", env={"GOOGLE_REDIRECT_URI": other_redirect}, log_dir=tmp_path, port=port
    )
    try:
        done = connect_over_http(server.url)
    finally:
        server.stop()
    assert done.status_code == 200, done.text
    new = tokens.read_refresh_token()
    assert new.refresh_token != old.refresh_token
    assert versions() == [(2, "ENABLED"), (1, "DISABLED")]
    # Act: the first refresh token stops working (revoking it would withdraw the whole
    # grant, the new token too, as at Google): the running instance calls Calendar.
    assert sandbox.expire_refresh_token(old.refresh_token)
    reads_before = requests_count(sandbox, "secretmanager.projects.secrets.versions.access")

    fetched = calendar.get_event(event["id"])
    listed = calendar.list_events(maxResults=5)

    # Assert: the calls worked because the instance read the new version, once.
    assert fetched["id"] == event["id"]
    assert [e["id"] for e in listed["items"]] == [event["id"]]
    reads_after = requests_count(sandbox, "secretmanager.projects.secrets.versions.access")
    assert reads_after == reads_before + 1
    assert tokens.admin_credentials().refresh_token == new.refresh_token
    server_log = server.log_path.read_text()
    for secret in (old.refresh_token, new.refresh_token, CLIENT_SECRET):
        assert secret not in server_log
        assert secret not in done.text


# --- status ------------------------------------------------------------------------------------


def status_json(client: Any) -> dict[str, Any]:
    """The signed-in admin's status document (anonymous visitors get only "connected")."""
    if session_cookie(client) is None:
        assert sign_in(client).status_code == 303
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Cache-Control"] == "no-store"
    return json.loads(text(response))


def test_status_when_not_connected(sandbox: Any, client: Any) -> None:
    document = status_json(client)
    page = client.get("/", headers={"Accept": "text/html"})

    assert page.status_code == 200
    assert_safe_page(page)
    assert "Not connected" in text(page)
    assert document["state"] == "not_connected"
    assert document["connected"] is False
    assert document["email"] is None


def test_status_when_connected(sandbox: Any, client: Any) -> None:
    connected, _ = connect(client)
    assert connected.status_code == 200
    refreshes_before = requests_count(sandbox, "oauth.token.refresh_token")

    page = client.get("/")
    document = status_json(client)

    body = text(page)
    assert 'Google connection: <span class="ok">Connected' in body
    assert ADMIN_EMAIL in body
    assert "Stored permission still works</dt><dd>yes" in body
    assert document["state"] == "connected"
    assert document["connected"] is True
    assert document["email"] == ADMIN_EMAIL
    assert document["tokenRefreshes"] is True
    since = datetime.fromisoformat(document["connectedAt"])
    assert abs(since - datetime.now(UTC)) < timedelta(minutes=1)
    # It really tries, at most once a minute per instance: both requests, one refresh.
    assert requests_count(sandbox, "oauth.token.refresh_token") == refreshes_before + 1
    stored = tokens.read_refresh_token().refresh_token
    assert stored not in body
    assert stored not in json.dumps(document)


def test_status_when_the_token_was_revoked(sandbox: Any, client: Any) -> None:
    connected, _ = connect(client)
    assert connected.status_code == 200
    revoke_at_google(sandbox, tokens.read_refresh_token().refresh_token)

    page = client.get("/")
    document = status_json(client)

    assert "Must be reconnected" in text(page)
    assert "Stored permission still works</dt><dd>no" in text(page)
    assert document["state"] == "reconnect_required"
    assert document["connected"] is False
    assert document["tokenRefreshes"] is False
    assert document["email"] == ADMIN_EMAIL


def test_a_stored_grant_without_calendar_access_must_be_reconnected(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    # A grant for sign-in only (someone stored it by hand, or an old client's): Google's
    # token endpoint answers invalid_scope when classcal asks for calendar access.
    connected, _ = connect(client)
    assert connected.status_code == 200
    narrow = sandbox.issue_token(ADMIN_EMAIL, CLIENT_ID, "openid email")
    tokens.store_refresh_token(narrow["refresh_token"])

    document = status_json(client)

    assert document["state"] == "reconnect_required"
    assert document["tokenRefreshes"] is False


@pytest.mark.slow
def test_status_when_the_token_endpoint_is_down(sandbox: Any, client: Any) -> None:
    connected, _ = connect(client)
    assert connected.status_code == 200
    sandbox.fault("POST", r"^/token$", 503, "backendError", count=100)

    document = status_json(client)

    assert document["state"] == "unknown"
    assert document["tokenRefreshes"] is None


# --- transport -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_get_and_head_are_allowed(sandbox: Any, client: Any, method: str) -> None:
    response = client.open("/callback", method=method)

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert_safe_page(response)


def test_unknown_path_is_404(sandbox: Any, client: Any) -> None:
    response = client.get("/admin")

    assert response.status_code == 404
    assert_safe_page(response)


def test_head_spends_no_state(sandbox: Any, client: Any, firestore: Any) -> None:
    callback_url = consent(start(client))

    head = client.head(local_path(callback_url))
    response = client.get(local_path(callback_url))

    assert head.status_code == 200
    assert head.get_data() == b""
    assert response.status_code == 200, text(response)


def test_missing_setting_gives_503_page_naming_nothing_secret(
    sandbox: Any, client: Any, env: pytest.MonkeyPatch
) -> None:
    env.delenv("AUTH_GOOGLE_SECRET")
    reset_config()

    response = client.get("/signin")

    assert response.status_code == 503
    assert_safe_page(response)
    assert "not set up completely" in text(response)


# --- nothing secret leaks ----------------------------------------------------------------------


def test_no_token_code_or_secret_in_any_body_or_log_line(
    sandbox: Any,
    client: Any,
    firestore: Any,
    capsys: pytest.CaptureFixture[str],
    log_lines: Callable[[], list[str]],
) -> None:
    bodies: list[str] = []
    secrets: list[str] = [CLIENT_SECRET]

    def collect(response: Any) -> None:
        bodies.append(text(response))
        bodies.append(json.dumps(dict(response.headers)))

    # A good flow, a replay, a wrong account, a refused id_token, a status of each kind.
    from shared.core import signing

    authorize_url = start(client)
    key = signing.derive_key(SIGNING_KEY.encode(), "classcal-oauth-flow")
    verifier = signing.unseal(flow_cookie(client), key, "classcal-oauth-flow")["v"]  # type: ignore[index]
    secrets.append(session_cookie(client) or "")
    callback_url = consent(authorize_url)
    secrets += [verifier, parse_qs(urlsplit(callback_url).query)["code"][0]]
    collect(client.get(local_path(callback_url)))
    collect(client.get(local_path(callback_url)))
    collect(client.get("/"))
    collect(client.get("/", headers={"Accept": "application/json"}))
    for email in (OTHER_EMAIL, ADMIN_EMAIL):
        if email == ADMIN_EMAIL:
            sandbox.set_oauth(id_token={"bad_signature": True})
        wrong = consent(start(client), email=email)
        secrets.append(parse_qs(urlsplit(wrong).query)["code"][0])
        collect(client.get(local_path(wrong)))
    stored = tokens.read_refresh_token().refresh_token
    secrets += [stored, base64.b64encode(stored.encode()).decode()]
    # The stored token stops working. (Revoking the admin's tampered grant above already
    # withdrew it at Google, which revokes a user's whole grant to the client.)
    sandbox.expire_refresh_token(stored)
    collect(client.get("/", headers={"Accept": "application/json"}))

    captured = capsys.readouterr()
    everything = "\n".join([*bodies, captured.out, captured.err])
    for secret in secrets:
        assert secret not in everything
    assert "ya29." not in everything  # no access token of any grant
    assert "1//0" not in everything  # no refresh token of any grant
    assert not re.search(r"eyJ[\w-]+\.eyJ", everything)  # no id_token
    lines = log_lines()
    assert any("wrong account tried to connect" in line for line in lines)
    log_text = "\n".join(lines)
    for secret in secrets:
        assert secret not in log_text
    assert "ya29." not in log_text
    assert "1//0" not in log_text
