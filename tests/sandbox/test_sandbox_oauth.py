"""OAuth 2.0 through google_auth_oauthlib's Flow, google-auth credentials and id_token."""

from __future__ import annotations

import urllib.parse
from html.parser import HTMLParser
from typing import Any

import google.auth.transport.requests
import pytest
import requests
from google.auth import exceptions as auth_exceptions
from google.oauth2 import id_token
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from googleapiclient.discovery import build

from sandbox.control import SandboxControlError
from tests.support.sandbox_clients import (
    ADMIN,
    CALENDAR,
    CALENDAR_READONLY,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    TEACHER,
    calendar_service,
    credentials,
)

USERINFO_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
SCOPES = ["openid", USERINFO_EMAIL, CALENDAR]


@pytest.fixture(autouse=True)
def insecure_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    # oauthlib refuses plain-http endpoints without this; the sandbox is local http.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def make_flow(sandbox, scopes: list[str] = SCOPES) -> Flow:
    config = {
        "web": {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "auth_uri": f"{sandbox.url}/o/oauth2/v2/auth",
            "token_uri": f"{sandbox.url}/token",
            "redirect_uris": [REDIRECT_URI],
        }
    }
    return Flow.from_client_config(config, scopes=scopes, redirect_uri=REDIRECT_URI)


class ConsentForm(HTMLParser):
    """The consent page's form fields, as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: list[tuple[str, str]] = []
        self.checkboxes: list[str] = []
        self.buttons: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = attributes["action"]
        elif tag == "input" and attributes.get("type") == "checkbox":
            self.checkboxes.append(attributes["value"])
        elif tag == "input":
            self.fields.append((attributes["name"], attributes.get("value", "")))
        elif tag == "button":
            self.buttons[attributes["id"]] = attributes["value"]


def consent(
    sandbox, url: str, button: str = "allow", email: str | None = None, untick: tuple[str, ...] = ()
) -> dict[str, str]:
    """Open the consent page, press a button; returns the redirect's query parameters."""
    page = requests.get(url, timeout=5)
    page.raise_for_status()
    form = ConsentForm()
    form.feed(page.text)
    data = [(k, email if (k == "email" and email) else v) for k, v in form.fields]
    data += [("scope", scope) for scope in form.checkboxes if scope not in untick]
    data.append(("action", form.buttons[button]))
    answer = requests.post(
        urllib.parse.urljoin(sandbox.url, form.action), data=data, allow_redirects=False, timeout=5
    )
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def verify(sandbox, token: str) -> dict[str, Any]:
    return id_token.verify_token(
        token,
        google.auth.transport.requests.Request(),
        audience=CLIENT_ID,
        certs_url=f"{sandbox.url}/oauth2/v1/certs",
    )


def test_full_flow_with_pkce_and_id_token(sandbox):
    flow = make_flow(sandbox)
    url, state = flow.authorization_url(prompt="consent", login_hint=ADMIN)

    query = consent(sandbox, url)
    token = flow.fetch_token(code=query["code"])
    claims = verify(sandbox, token["id_token"])
    creds = flow.credentials
    service = calendar_service(sandbox)  # a second, independent grant works alongside

    assert "code_challenge=" in url
    assert "access_type=offline" in url
    assert query["state"] == state
    assert query["scope"].split() == SCOPES
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3599
    assert token["access_token"].startswith("ya29.")
    assert token["refresh_token"].startswith("1//0")
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["aud"] == CLIENT_ID
    assert claims["azp"] == CLIENT_ID
    assert claims["email"] == ADMIN
    assert claims["email_verified"] is True
    assert claims["exp"] - claims["iat"] == 3600
    assert creds.refresh_token == token["refresh_token"]
    assert service.events().list(calendarId="primary").execute()["items"] == []


def test_flow_credentials_call_calendar(sandbox):
    flow = make_flow(sandbox)
    url, _ = flow.authorization_url(prompt="consent")
    flow.fetch_token(code=consent(sandbox, url)["code"])
    service = build(
        "calendar",
        "v3",
        credentials=flow.credentials,
        static_discovery=True,
        client_options={"api_endpoint": f"{sandbox.url}/calendar/v3/"},
    )

    page = service.events().list(calendarId="primary").execute()

    assert page["summary"] == "admin@school.test"


def test_sub_is_stable_per_email(sandbox):
    subjects = []
    for email in (ADMIN, ADMIN, TEACHER):
        flow = make_flow(sandbox)
        url, _ = flow.authorization_url(login_hint=email)
        token = flow.fetch_token(code=consent(sandbox, url)["code"])
        subjects.append(verify(sandbox, token["id_token"])["sub"])

    assert subjects[0] == subjects[1] != subjects[2]


def test_deny_redirects_with_access_denied(sandbox):
    flow = make_flow(sandbox)
    url, state = flow.authorization_url()

    query = consent(sandbox, url, button="deny")

    assert query == {"error": "access_denied", "state": state}


def test_consent_as_another_account(sandbox):
    flow = make_flow(sandbox)
    url, _ = flow.authorization_url(login_hint=ADMIN)

    token = flow.fetch_token(code=consent(sandbox, url, email=TEACHER)["code"])

    assert verify(sandbox, token["id_token"])["email"] == TEACHER


def test_unticked_scope_is_not_granted(sandbox, monkeypatch):
    # Google grants fewer scopes than asked when the user unticks one; oauthlib
    # raises "Scope has changed" unless told to relax.
    flow = make_flow(sandbox, ["openid", USERINFO_EMAIL, CALENDAR, CALENDAR_READONLY])
    url, _ = flow.authorization_url()
    query = consent(sandbox, url, untick=(CALENDAR,))

    with pytest.raises(Warning, match="Scope has changed"):
        flow.fetch_token(code=query["code"])
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")
    again = make_flow(sandbox, ["openid", USERINFO_EMAIL, CALENDAR, CALENDAR_READONLY])
    url, _ = again.authorization_url()
    token = again.fetch_token(code=consent(sandbox, url, untick=(CALENDAR,))["code"])

    assert query["scope"].split() == ["openid", USERINFO_EMAIL, CALENDAR_READONLY]
    assert token["scope"] == ["openid", USERINFO_EMAIL, CALENDAR_READONLY]


def test_short_scope_names_come_back_long(sandbox, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")
    flow = make_flow(sandbox, ["openid", "email"])
    url, _ = flow.authorization_url()

    token = flow.fetch_token(code=consent(sandbox, url)["code"])

    assert token["scope"] == ["openid", USERINFO_EMAIL]


def test_online_access_gets_no_refresh_token(sandbox):
    flow = make_flow(sandbox)
    url, _ = flow.authorization_url(access_type="online")

    token = flow.fetch_token(code=consent(sandbox, url)["code"])

    assert "refresh_token" not in token


def test_code_is_single_use_and_pkce_is_checked(sandbox):
    flow = make_flow(sandbox)
    url, _ = flow.authorization_url()
    code = consent(sandbox, url)["code"]
    verifier = flow.code_verifier

    def exchange(**extra: str) -> requests.Response:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            **extra,
        }
        return requests.post(f"{sandbox.url}/token", data=data, timeout=5)

    missing = exchange()
    wrong = exchange(code_verifier="x" * 43)
    wrong_redirect = exchange(code_verifier=verifier, redirect_uri="http://127.0.0.1:9/other")
    good = exchange(code_verifier=verifier)
    reused = exchange(code_verifier=verifier)

    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_grant")
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    assert wrong_redirect.status_code == 400
    assert good.status_code == 200
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")


def test_client_authentication(sandbox):
    data = {"grant_type": "refresh_token", "refresh_token": "1//0nope"}

    basic_ok = requests.post(
        f"{sandbox.url}/token", data=data, auth=(CLIENT_ID, CLIENT_SECRET), timeout=5
    )
    bad_secret = requests.post(
        f"{sandbox.url}/token", data=data, auth=(CLIENT_ID, "wrong"), timeout=5
    )
    unknown = requests.post(
        f"{sandbox.url}/token",
        data={**data, "client_id": "nobody", "client_secret": "x"},
        timeout=5,
    )

    # The client is fine; the refresh token is not.
    assert basic_ok.json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }
    assert (bad_secret.status_code, bad_secret.json()["error"]) == (401, "invalid_client")
    assert (unknown.status_code, unknown.json()["error"]) == (401, "invalid_client")


def test_consent_page_errors(sandbox):
    base = f"{sandbox.url}/o/oauth2/v2/auth"
    common = {"response_type": "code", "scope": "openid"}

    unknown_client = requests.get(
        base, params={**common, "client_id": "nobody", "redirect_uri": REDIRECT_URI}, timeout=5
    )
    bad_redirect = requests.get(
        base,
        params={**common, "client_id": CLIENT_ID, "redirect_uri": "http://evil.test/cb"},
        timeout=5,
    )

    assert unknown_client.status_code == 400
    assert "invalid_client" in unknown_client.text
    assert bad_redirect.status_code == 400
    assert "redirect_uri_mismatch" in bad_redirect.text
    assert "text/html" in bad_redirect.headers["Content-Type"]


def test_consent_page_escapes_what_it_shows(sandbox):
    params = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid <script>x</script>",
        "state": '"><script>alert(1)</script>',
        "login_hint": "<b>@x",
    }

    page = requests.get(f"{sandbox.url}/o/oauth2/v2/auth", params=params, timeout=5)

    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert 'id="allow"' in page.text
    assert 'id="deny"' in page.text
    assert 'name="email"' in page.text


def test_refresh_after_revoke_raises_refresh_error(sandbox):
    creds = credentials(sandbox)
    request = google.auth.transport.requests.Request()
    creds.refresh(request)

    revoked = requests.post(
        f"{sandbox.url}/revoke", params={"token": creds.refresh_token}, timeout=5
    )
    unknown = requests.post(f"{sandbox.url}/revoke", data={"token": "nothing"}, timeout=5)
    with pytest.raises(auth_exceptions.RefreshError) as raised:
        creds.refresh(request)

    assert revoked.status_code == 200
    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_token")
    assert "invalid_grant" in str(raised.value)
    assert raised.value.args[1]["error_description"] == "Token has been expired or revoked."


def test_revoking_the_access_token_revokes_the_grant(sandbox):
    granted = sandbox.issue_token(ADMIN, CLIENT_ID, CALENDAR)

    requests.post(f"{sandbox.url}/revoke", params={"token": granted["access_token"]}, timeout=5)
    refresh = requests.post(
        f"{sandbox.url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": granted["refresh_token"],
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        timeout=5,
    )

    assert refresh.status_code == 400
    assert refresh.json()["error"] == "invalid_grant"


def test_refresh_response_keeps_scope_and_has_no_refresh_token(sandbox):
    granted = sandbox.issue_token(ADMIN, CLIENT_ID, f"openid {CALENDAR}")

    refreshed = requests.post(
        f"{sandbox.url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": granted["refresh_token"],
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        timeout=5,
    ).json()

    assert set(refreshed) == {"access_token", "expires_in", "scope", "token_type", "id_token"}
    assert refreshed["scope"] == f"openid {CALENDAR}"
    assert refreshed["access_token"] != granted["access_token"]


def test_expired_access_token_is_refreshed_by_google_auth(sandbox):
    sandbox.set_oauth(access_token_ttl=0)
    stale = sandbox.issue_token(ADMIN, CLIENT_ID, CALENDAR)
    sandbox.set_oauth()
    # No expiry on the client side: it sends the stale token and learns from the 401.
    creds = Credentials(
        token=stale["access_token"],
        refresh_token=stale["refresh_token"],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_uri=f"{sandbox.url}/token",
    )
    service = build(
        "calendar",
        "v3",
        credentials=creds,
        static_discovery=True,
        client_options={"api_endpoint": f"{sandbox.url}/calendar/v3/"},
    )

    page = service.events().list(calendarId="primary").execute()

    assert page["items"] == []
    assert creds.token != stale["access_token"]
    assert sandbox.stats()["requests"]["oauth.token.refresh_token"] == 1
    assert sandbox.stats()["requests"]["calendar.events.list"] == 2


@pytest.mark.parametrize(
    ("knob", "error"),
    [
        ({"aud": "someone-else"}, ValueError),
        ({"exp_offset": -7200}, ValueError),
        ({"bad_signature": True}, ValueError),
    ],
)
def test_tampered_id_tokens_fail_verification(sandbox, knob, error):
    sandbox.set_oauth(id_token=knob)
    flow = make_flow(sandbox)
    url, _ = flow.authorization_url()
    token = flow.fetch_token(code=consent(sandbox, url)["code"])

    with pytest.raises(error):
        verify(sandbox, token["id_token"])


def test_issuer_and_email_verified_knobs_are_for_the_app_to_check(sandbox):
    # verify_token checks signature, audience and expiry; the issuer and
    # email_verified are the application's to check, so they come through.
    sandbox.set_oauth(id_token={"iss": "https://evil.example", "email_verified": False})
    flow = make_flow(sandbox)
    url, _ = flow.authorization_url()

    claims = verify(sandbox, flow.fetch_token(code=consent(sandbox, url)["code"])["id_token"])

    assert claims["iss"] == "https://evil.example"
    assert claims["email_verified"] is False


def test_omit_refresh_token_knob(sandbox):
    sandbox.set_oauth(omit_refresh_token=True)
    flow = make_flow(sandbox)
    url, _ = flow.authorization_url(prompt="consent")

    token = flow.fetch_token(code=consent(sandbox, url)["code"])

    assert "refresh_token" not in token


def test_jwks_endpoint(sandbox):
    jwks = requests.get(f"{sandbox.url}/oauth2/v3/certs", timeout=5).json()
    pem = requests.get(f"{sandbox.url}/oauth2/v1/certs", timeout=5).json()

    [key] = jwks["keys"]
    assert key["kty"] == "RSA"
    assert key["alg"] == "RS256"
    assert list(pem) == [key["kid"]]
    assert pem[key["kid"]].startswith("-----BEGIN CERTIFICATE-----")


def test_control_tokens_need_a_registered_client(sandbox):
    with pytest.raises(SandboxControlError) as raised:
        sandbox.issue_token(ADMIN, "unregistered-client", CALENDAR)

    assert raised.value.status == 404


def test_include_granted_scopes_adds_earlier_grants(sandbox, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")
    first = make_flow(sandbox, ["openid", CALENDAR_READONLY])
    url, _ = first.authorization_url()
    first.fetch_token(code=consent(sandbox, url)["code"])
    second = make_flow(sandbox, ["openid", CALENDAR])

    url, _ = second.authorization_url(include_granted_scopes="true")
    token = second.fetch_token(code=consent(sandbox, url)["code"])

    assert token["scope"] == ["openid", CALENDAR, CALENDAR_READONLY]
