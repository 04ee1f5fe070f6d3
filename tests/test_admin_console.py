"""The admin's console in oauth_callback: sign-in, sessions, CSRF, the anonymous page,
/healthz, "Retry now", and the connect flow's attacker scenarios.

The function runs in functions-framework's real app (its test client); consent is given
on the sandbox's real consent form; bookings live in the Firestore emulator.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest

from localstack.constants import ADMIN_EMAIL, CLIENT_ID, REDIRECT_URI
from shared.core import signing
from shared.core.config import reset_config
from shared.google import clients, tokens
from tests.support.scheduling import read_booking, write_booking
from tests.test_oauth_callback import (
    OTHER_EMAIL,
    SIGNING_KEY,
    consent,
    csrf_of,
    local_path,
    requests_count,
    session_cookie,
    sign_in,
    start,
    text,
)

SECRET_WORDS = ("@", "scope", "googleapis", "secrets/", "versions", "1//0", "ya29.", "token")


@pytest.fixture(autouse=True)
def _key(env: pytest.MonkeyPatch) -> None:
    from shared.domain import connection

    env.setenv("SESSION_SIGNING_KEY", SIGNING_KEY)
    reset_config()
    connection.forget_checks()


@pytest.fixture
def client(firestore: Any) -> Any:
    import functions_framework

    from tests.test_oauth_callback import SOURCE

    return functions_framework.create_app("oauth_callback", str(SOURCE)).test_client()


def documents(firestore: Any) -> list[str]:
    return [d.reference.path for c in firestore.collections() for d in c.stream()]


def problem_booking(firestore: Any, state: str, reason: str, message: str, minutes_ago: int) -> Any:
    return write_booking(
        firestore,
        paymentStatus="approved",
        schedulingState=state,
        schedulingReason=reason,
        schedulingMessage=message,
        schedulingAttempts=2,
        schedulingUpdatedAt=datetime.now(UTC) - timedelta(minutes=minutes_ago),
    )


# --- the anonymous page and /healthz -----------------------------------------------------


def test_anonymous_page_and_healthz_say_only_whether_classcal_is_connected(
    connected: Any, client: Any, firestore: Any
) -> None:
    # A connection recorded as the callback records it.
    from shared.stores import oauth_states

    version = tokens.read_refresh_token().version
    oauth_states.record_connection(ADMIN_EMAIL, list(clients.OAUTH_SCOPES), version, "primary")
    before = dict(connected_sandbox_requests(client))

    page = client.get("/", headers={"Accept": "text/html"})
    as_json = client.get("/", headers={"Accept": "application/json"})
    health = [client.get("/healthz") for _ in range(20)]

    raw = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "classcal is connected to Google" in raw
    assert "Sign in with Google" in raw
    lowered = raw.lower()
    for word in SECRET_WORDS:
        assert word not in lowered, word
    assert as_json.get_json() == {"connected": True}
    for answer in health:
        assert answer.status_code == 200
        assert answer.get_json() == {"connected": True}
        assert answer.get_data(as_text=True) == '{"connected": true}'
    # No Google call at all for any of them.
    assert dict(connected_sandbox_requests(client)) == before
    assert "Set-Cookie" not in page.headers


def connected_sandbox_requests(client: Any) -> dict[str, int]:
    from sandbox.control import SandboxControl

    url = clients.endpoints().token_uri.rsplit("/", 1)[0]
    return dict(SandboxControl(url).stats()["requests"])


def test_healthz_says_not_connected_when_nothing_is_connected(sandbox: Any, client: Any) -> None:
    assert client.get("/healthz").get_json() == {"connected": False}


def test_healthz_reads_firestore_at_most_once_a_minute(
    connected: Any, client: Any, firestore: Any
) -> None:
    from shared.stores import oauth_states

    assert client.get("/healthz").get_json() == {"connected": False}
    version = tokens.read_refresh_token().version
    oauth_states.record_connection(ADMIN_EMAIL, list(clients.OAUTH_SCOPES), version, "primary")

    # Cached for the minute: the instance does not read again.
    assert client.get("/healthz").get_json() == {"connected": False}


# --- sign-in -------------------------------------------------------------------------------


def test_the_admin_signs_in_with_openid_email_only_and_gets_a_host_cookie(
    sandbox: Any, client: Any
) -> None:
    response = client.get("/signin")
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert set(query["scope"][0].split()) == {"openid", "email"}
    assert query["code_challenge_method"] == ["S256"]
    assert query["access_type"] == ["online"]
    assert query["nonce"]

    answer = client.get(local_path(consent(response.headers["Location"])))

    assert answer.status_code == 303
    cookies = answer.headers.getlist("Set-Cookie")
    [session] = [c for c in cookies if c.startswith("__Host-classcal-session=")]
    for attribute in ("Path=/", "Secure", "HttpOnly", "SameSite=Lax", "Max-Age=28800"):
        assert attribute in session
    assert "Domain" not in session
    page = client.get("/")
    assert "classcal console" in text(page)
    assert ADMIN_EMAIL in text(page)
    assert "form-action 'self'" in page.headers["Content-Security-Policy"]
    assert "script-src" not in page.headers["Content-Security-Policy"]
    assert requests_count(sandbox, "oauth.revoke") == 0


def test_another_account_is_refused_and_gets_no_session(sandbox: Any, client: Any) -> None:
    answer = sign_in(client, email=OTHER_EMAIL)

    assert answer.status_code == 403
    assert "may not use classcal" in text(answer)
    assert session_cookie(client) is None
    assert "classcal console" not in text(client.get("/"))
    assert requests_count(sandbox, "oauth.revoke") == 0


def test_a_sign_in_answer_from_another_browser_is_refused_before_any_exchange(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    import functions_framework

    from tests.test_oauth_callback import SOURCE

    started = client.get("/signin").headers["Location"]
    callback = consent(started)
    other_browser = functions_framework.create_app("oauth_callback", str(SOURCE)).test_client()

    answer = other_browser.get(local_path(callback))

    assert answer.status_code == 400
    assert requests_count(sandbox, "oauth.token.authorization_code") == 0
    assert session_cookie(other_browser) is None


@pytest.mark.parametrize("change", ["tampered", "expired", "other key", "missing"])
def test_a_tampered_expired_or_missing_session_changes_nothing(
    sandbox: Any, client: Any, firestore: Any, change: str
) -> None:
    broken = problem_booking(firestore, "waiting", "admin_reconnect_required", "Waiting.", 5)
    assert sign_in(client).status_code == 303
    csrf = csrf_of(client)
    good = session_cookie(client)
    assert good is not None
    key = signing.derive_key(SIGNING_KEY.encode(), "classcal-admin-session")
    payload = signing.unseal(good, key, "classcal-admin-session")
    assert payload is not None
    body = {k: v for k, v in payload.items() if k not in ("iat", "exp")}
    forged = {
        "tampered": good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"),
        "expired": signing.seal(
            body, key, "classcal-admin-session", 8 * 3600, now=time.time() - 8 * 3600 - 5
        ),
        "other key": signing.seal(body, b"k" * 32, "classcal-admin-session", 3600),
        "missing": "",
    }[change]
    client.set_cookie("__Host-classcal-session", forged, secure=True, httponly=True)

    retried = client.post("/retry", data={"csrf": csrf, "booking": broken.booking_id})
    signed_out = client.post("/signout", data={"csrf": csrf})
    started = client.post("/start", data={"csrf": csrf})
    page = client.get("/")

    for answer in (retried, signed_out, started):
        assert answer.status_code == 403
    assert "classcal console" not in text(page)
    assert read_booking(firestore, broken.booking_id)["schedulingState"] == "waiting"
    assert requests_count(sandbox, "calendar.events.insert") == 0


@pytest.mark.parametrize("csrf", ["", "forged-token", None])
def test_a_forged_or_missing_csrf_token_changes_nothing(
    connected: Any, client: Any, firestore: Any, sandbox: Any, csrf: str | None
) -> None:
    broken = problem_booking(firestore, "waiting", "admin_reconnect_required", "Waiting.", 5)
    assert sign_in(client).status_code == 303
    data = {"booking": broken.booking_id}
    if csrf is not None:
        data["csrf"] = csrf

    retried = client.post("/retry", data=data)
    signed_out = client.post("/signout", data={} if csrf is None else {"csrf": csrf})
    started = client.post("/start", data={} if csrf is None else {"csrf": csrf})

    for answer in (retried, signed_out, started):
        assert answer.status_code == 403
        assert "has expired" in text(answer)
    assert "Location" not in started.headers
    assert read_booking(firestore, broken.booking_id)["schedulingState"] == "waiting"
    assert requests_count(sandbox, "calendar.events.insert") == 0
    assert "classcal console" in text(client.get("/"))  # still signed in


def test_a_csrf_token_of_another_session_is_refused(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    import functions_framework

    from tests.test_oauth_callback import SOURCE

    other = functions_framework.create_app("oauth_callback", str(SOURCE)).test_client()
    assert sign_in(other).status_code == 303
    foreign = csrf_of(other)
    assert sign_in(client).status_code == 303

    assert client.post("/signout", data={"csrf": foreign}).status_code == 403


def test_sign_out_ends_the_session_even_if_the_cookie_is_kept(sandbox: Any, client: Any) -> None:
    assert sign_in(client).status_code == 303
    kept = session_cookie(client)
    assert kept is not None

    answer = client.post("/signout", data={"csrf": csrf_of(client)})

    assert answer.status_code == 303
    assert any(
        c.startswith("__Host-classcal-session=;") and "Max-Age=0" in c
        for c in answer.headers.getlist("Set-Cookie")
    )
    client.set_cookie("__Host-classcal-session", kept, secure=True, httponly=True)
    assert "classcal console" not in text(client.get("/"))


# --- the console ---------------------------------------------------------------------------


def test_the_console_lists_problem_bookings_newest_first_and_pages_them(
    connected: Any, client: Any, firestore: Any, env: pytest.MonkeyPatch
) -> None:
    from shared.domain import console

    env.setattr(console, "PAGE_SIZE", 2)
    oldest = problem_booking(firestore, "failed", "event_deleted", "Its event was deleted.", 30)
    middle = problem_booking(firestore, "failed", "slot_taken", "Another class has it.", 20)
    newest = problem_booking(firestore, "waiting", "admin_reconnect_required", "Waiting.", 10)
    write_booking(firestore, schedulingState="done")  # fine: not listed
    assert sign_in(client).status_code == 303

    first = text(client.get("/"))
    ids = re.findall(r'id="booking-([^"]+)"', first)
    assert ids == [newest.booking_id, middle.booking_id]
    assert "slot_taken" in first
    assert "Its time was already taken" in first
    assert "admin_reconnect_required" in first
    after = re.search(r'href="[^"]*\?after=([^"]+)"', first)
    assert after
    second = text(client.get(f"/?after={after.group(1)}"))
    assert re.findall(r'id="booking-([^"]+)"', second) == [oldest.booking_id]
    # Class times in the school's zone.
    local = oldest.start.astimezone(console_zone())
    assert local.strftime("%H:%M") in second


def console_zone() -> Any:
    from shared.core.config import get_config

    return get_config().timezone


def test_retry_now_schedules_a_booking_that_can_now_be_scheduled_exactly_once(
    connected: Any, client: Any, firestore: Any, sandbox: Any
) -> None:
    waiting = problem_booking(firestore, "waiting", "admin_reconnect_required", "Waiting.", 5)
    assert sign_in(client).status_code == 303
    csrf = csrf_of(client)

    first = client.post("/retry", data={"csrf": csrf, "booking": waiting.booking_id})
    second = client.post("/retry", data={"csrf": csrf, "booking": waiting.booking_id})

    assert first.status_code == 303
    assert first.headers["Location"].endswith("/?retried=scheduled")
    assert second.headers["Location"].endswith("/?retried=gone")
    stored = read_booking(firestore, waiting.booking_id)
    assert stored["status"] == "scheduled"
    assert requests_count(sandbox, "calendar.events.insert") == 1
    page = text(client.get("/?retried=scheduled"))
    assert "The class was scheduled" in page
    assert waiting.booking_id not in page


# --- the connect flow under attack -----------------------------------------------------------


def _rewrite(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | params
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_start_needs_the_signed_in_admin_and_50_calls_write_nothing(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    anonymous = [client.get("/start") for _ in range(25)]
    anonymous += [client.post("/start", data={"csrf": "x"}) for _ in range(25)]

    assert {a.status_code for a in anonymous} == {403}
    assert documents(firestore) == []
    assert sign_in(client).status_code == 303
    csrf = csrf_of(client)
    signed = [client.post("/start", data={"csrf": csrf}) for _ in range(50)]
    assert {a.status_code for a in signed} == {302}
    assert documents(firestore) == []


def test_a_state_started_by_someone_else_with_rewritten_scopes_stores_and_revokes_nothing(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    import functions_framework

    from tests.test_oauth_callback import SOURCE

    # The admin is connected and signed in, with a flow of their own under way.
    first = consent(start(client))
    assert client.get(local_path(first)).status_code == 200
    stored = tokens.read_refresh_token()
    start(client)
    # The attacker cannot start a flow (not signed in); they craft a consent link with a
    # state of their own choosing and extra scopes, and hand it to the admin.
    attacker = functions_framework.create_app("oauth_callback", str(SOURCE)).test_client()
    assert attacker.get("/start").status_code == 403
    crafted = (
        clients.endpoints().auth_uri
        + "?"
        + urlencode(
            {
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "response_type": "code",
                "scope": "openid email https://www.googleapis.com/auth/calendar.events "
                "https://www.googleapis.com/auth/drive https://mail.google.com/",
                "include_granted_scopes": "true",
                "access_type": "offline",
                "state": "attacker-chosen-state-0123456789",
            }
        )
    )
    exchanges = requests_count(sandbox, "oauth.token.authorization_code")

    answer = client.get(local_path(consent(crafted)))

    assert answer.status_code == 400
    assert "did not start this sign-in" in text(answer)
    assert requests_count(sandbox, "oauth.token.authorization_code") == exchanges
    assert requests_count(sandbox, "oauth.revoke") == 0
    assert tokens.read_refresh_token().version == stored.version
    assert _refreshes(stored.refresh_token)


def test_a_grant_with_extra_scopes_is_refused_stored_nowhere_and_not_revoked(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    first = consent(start(client))
    assert client.get(local_path(first)).status_code == 200
    stored = tokens.read_refresh_token()
    # The admin's own flow, but its consent link rewritten to ask for mail and files too.
    own = start(client)
    query = parse_qs(urlsplit(own).query)
    rewritten = _rewrite(
        own,
        scope=query["scope"][0] + " https://www.googleapis.com/auth/drive https://mail.google.com/",
        include_granted_scopes="true",
    )

    answer = client.get(local_path(consent(rewritten)))

    body = text(answer)
    assert answer.status_code == 400
    assert "more access than classcal asked for" in body
    assert "myaccount.google.com/permissions" in body
    assert requests_count(sandbox, "oauth.revoke") == 0
    assert tokens.read_refresh_token().version == stored.version
    assert _refreshes(stored.refresh_token)
    record = firestore.collection("settings").document("googleConnection").get().to_dict()
    assert "https://mail.google.com/" not in record["scopes"]


def test_a_connect_callback_without_the_admins_session_is_refused(
    sandbox: Any, client: Any, firestore: Any
) -> None:
    authorize_url = start(client)
    callback = consent(authorize_url)
    client.post("/signout", data={"csrf": csrf_of(client)})
    exchanges = requests_count(sandbox, "oauth.token.authorization_code")

    answer = client.get(local_path(callback))

    assert answer.status_code == 403
    assert requests_count(sandbox, "oauth.token.authorization_code") == exchanges
    assert tokens.list_versions() == []


def _refreshes(refresh_token: str) -> bool:
    from tests.test_oauth_callback import refreshes

    return refreshes(refresh_token)
