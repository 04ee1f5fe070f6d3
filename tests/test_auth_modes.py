"""The core flows in every GOOGLE_AUTH_MODE, against the sandbox: the admin's refresh token
(oauth), a service account acting as the admin keyless (IAM signJwt) and with a key file
from Secret Manager. Then what only service-account mode does: no refresh token anywhere,
Google refusing the delegation, the connect page, and no key material in any log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from localstack.constants import ADMIN_EMAIL, CLIENT_ID, PROJECT
from shared.core.config import from_env
from shared.core.errors import ConfigError
from shared.domain import maintenance
from shared.google import clients, credentials, tokens
from shared.stores import sync_state
from tests.support.calendar_sync import (
    CalendarLink,
    admin_calendar,
    booking,
    configure,
    move,
    scheduled_booking,
    start_calendar_link,
)
from tests.support.scheduling import (
    app_client,
    classcal_events,
    deliver,
    payment,
    read_booking,
    wait_for,
    write_booking,
)

SA_EMAIL = "classcal-calendar@classcal-test.iam.gserviceaccount.com"
KEY_SECRET = "classcal-calendar-key"
JWT_BEARER = "oauth.token.urn:ietf:params:oauth:grant-type:jwt-bearer"
SIGN_JWT = "iamcredentials.projects.serviceAccounts.signJwt"
REFRESH_GRANT = "oauth.token.refresh_token"
SECRET_READS = "secretmanager.projects.secrets.versions.access"
OAUTH_CALLBACK = Path(__file__).resolve().parent.parent / "functions" / "oauth_callback" / "main.py"
MODES = ("oauth", "keyless", "key")


@dataclass
class Auth:
    """How this test's Calendar calls authenticate, and what the sandbox knows of it."""

    mode: str
    client_id: str | None = None  # the service account's, in service-account modes
    key: dict[str, Any] = field(default_factory=dict)  # the key file, in key mode

    @property
    def service_account(self) -> bool:
        return self.mode != "oauth"


def _store_key(key: dict[str, Any]) -> None:
    client = clients.secret_manager_client()
    client.create_secret(
        parent=f"projects/{PROJECT}",
        secret_id=KEY_SECRET,
        secret={"replication": {"automatic": {}}},
    )
    client.add_secret_version(
        parent=f"projects/{PROJECT}/secrets/{KEY_SECRET}",
        payload={"data": json.dumps(key).encode()},
    )


def set_up(mode: str, sandbox: Any, env: pytest.MonkeyPatch) -> Auth:
    """The school's Google side as each mode needs it, set up as its operator would."""
    if mode == "oauth":
        granted = sandbox.issue_token(ADMIN_EMAIL, CLIENT_ID, clients.CALENDAR_SCOPE)
        tokens.store_refresh_token(granted["refresh_token"])
        credentials.forget()
        return Auth(mode)
    account = sandbox.add_service_account(SA_EMAIL, key=mode == "key")
    # What the Workspace administrator does once in the admin console.
    sandbox.grant_delegation(account["client_id"], [clients.CALENDAR_SCOPE])
    env.setenv("GOOGLE_AUTH_MODE", "service_account")
    # Nothing of the OAuth client is needed, or read, in this mode.
    env.delenv("AUTH_GOOGLE_SECRET")
    if mode == "key":
        _store_key(account["key"])
        env.setenv("GOOGLE_SERVICE_ACCOUNT_JSON", KEY_SECRET)
    else:
        env.setenv("GOOGLE_SERVICE_ACCOUNT_EMAIL", SA_EMAIL)
        env.setenv("GOOGLE_SERVICE_ACCOUNT_CLIENT_ID", account["client_id"])
    configure(env)
    credentials.forget()
    return Auth(mode, account["client_id"], account.get("key") or {})


@pytest.fixture(params=MODES)
def auth(request: pytest.FixtureRequest, sandbox: Any, firestore: Any, env: Any) -> Auth:
    return set_up(request.param, sandbox, env)


@pytest.fixture(params=("keyless", "key"))
def delegated(request: pytest.FixtureRequest, sandbox: Any, firestore: Any, env: Any) -> Auth:
    return set_up(request.param, sandbox, env)


def assert_no_refresh_token_machinery(auth: Auth, sandbox: Any) -> None:
    """Service-account mode: JWT-bearer grants only; keyless, every JWT signed by Google."""
    requests = sandbox.stats()["requests"]
    if not auth.service_account:
        assert requests.get(REFRESH_GRANT, 0) >= 1
        assert requests.get(JWT_BEARER, 0) == 0
        return
    assert requests.get(REFRESH_GRANT, 0) == 0
    assert requests.get(JWT_BEARER, 0) >= 1
    if auth.mode == "keyless":
        # No private key read from anywhere: no secret read at all, and each assertion
        # the token endpoint saw was signed by IAM.
        assert requests.get(SECRET_READS, 0) == 0
        assert requests[SIGN_JWT] == requests[JWT_BEARER]
    else:
        assert requests.get(SIGN_JWT, 0) == 0
        # The key file, read once per instance; never the refresh-token secret.
        assert requests.get(SECRET_READS, 0) == 1


# --- the core flows, in every mode ----------------------------------------------------------


def test_an_approved_payment_is_scheduled_with_a_meet_link_and_a_refund_cancels_it(
    auth: Auth, firestore: Any, sandbox: Any
) -> None:
    client = app_client()
    booking_ = write_booking(firestore)

    assert deliver(client, payment(booking_.preference_id, paymentId="pay-1")) == 200

    stored = read_booking(firestore, booking_.booking_id)
    assert stored["status"] == "scheduled"
    assert stored["htmlLink"].startswith("https://meet.google.com/")
    [event] = classcal_events(sandbox)
    # The event is the admin's, whoever signed the token.
    assert event["organizer"]["email"] == ADMIN_EMAIL

    assert deliver(client, payment(booking_.preference_id, "refunded", paymentId="pay-1")) == 200

    assert read_booking(firestore, booking_.booking_id)["status"] == "cancelled"
    assert [e["status"] for e in classcal_events(sandbox)] == ["cancelled"]
    assert_no_refresh_token_machinery(auth, sandbox)


@pytest.fixture
def webhook(
    auth: Auth, stack_logs: Path, firestore_emulator: Any, pubsub: Any, sandbox_server: Any
) -> Iterator[CalendarLink]:
    # The servers inherit this test's environment: the same mode and service account.
    server = start_calendar_link(
        stack_logs / f"auth-{auth.mode}", firestore_emulator, pubsub, sandbox_server
    )
    yield server
    server.stop()


@pytest.mark.slow
def test_maintenance_renews_the_channel_and_a_change_in_google_flows_back(
    auth: Auth, webhook: Any, firestore: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    # Every channel is "about to expire": the second run renews it.
    configure(
        env,
        CALENDAR_WEBHOOK_URL=webhook.url,
        CHANNEL_TTL_HOURS="1",
        CHANNEL_RENEW_BEFORE_HOURS="2",
    )
    first = maintenance.MaintenanceResult()
    maintenance.ensure_channel(first)
    [old] = sync_state.live_channels("primary")
    renewal = maintenance.MaintenanceResult()
    maintenance.ensure_channel(renewal)
    assert first.channels_created == 1
    assert renewal.channels_renewed == 1
    [new] = sync_state.live_channels("primary")
    assert new.id != old.id
    assert [c["id"] for c in sandbox.channels()] == [new.id]

    class_ = scheduled_booking(firestore)
    start, _ = move(admin_calendar(sandbox), class_.event_id, timedelta(days=1))

    wait_for(
        lambda: booking(firestore, class_.booking_id)["startTime"] == start,
        timeout=20,
        what="the move made in Google to reach the booking",
    )
    # The sync ran in calendar_sync, with the mode's credentials; the webhook held none.
    assert_no_refresh_token_machinery_in_webhook(auth, webhook.sync)
    webhook_log = webhook.webhook.log_path.read_text(errors="replace")
    assert "calls act as the admin" not in webhook_log
    assert "ya29." not in webhook_log


def assert_no_refresh_token_machinery_in_webhook(auth: Auth, server: Any) -> None:
    text = server.log_path.read_text(errors="replace")
    if auth.service_account:
        assert "calls act as the admin through" in text, text
        assert "refresh token" not in text
    assert "PRIVATE KEY" not in text
    assert "ya29." not in text


# --- service-account mode only ----------------------------------------------------------------


def test_withdrawn_delegation_makes_the_next_booking_wait_with_the_instruction_until_granted(
    delegated: Auth, firestore: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Tokens live a second: every delivery asks the token endpoint, as one an hour later would.
    sandbox.set_oauth(access_token_ttl=1)
    client = app_client()
    first = write_booking(firestore)
    assert deliver(client, payment(first.preference_id)) == 200

    assert sandbox.withdraw_delegation(delegated.client_id) is True
    second = write_booking(firestore)
    caplog.set_level(logging.INFO)
    refused = deliver(client, payment(second.preference_id))

    waiting = read_booking(firestore, second.booking_id)
    assert refused == 500  # Pub/Sub keeps the message
    assert waiting["status"] == "pending"
    assert waiting["schedulingState"] == "waiting"
    assert waiting["schedulingReason"] == "delegation_refused"
    assert delegated.client_id in waiting["schedulingMessage"]
    assert clients.CALENDAR_SCOPE in waiting["schedulingMessage"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    [instruction] = [r for r in errors if getattr(r, "reason", None) == "delegation_refused"]
    text = instruction.getMessage()
    assert "unauthorized_client" in text
    assert f"add client ID {delegated.client_id}" in text
    assert f"with the OAuth scope {clients.CALENDAR_SCOPE}" in text
    assert "Domain Wide Delegation" in text
    assert instruction.client_id == delegated.client_id
    assert "reconnect" not in waiting["schedulingMessage"]
    reasons = {getattr(r, "reason", None) for r in caplog.records}
    assert "admin_reconnect_required" not in reasons

    sandbox.grant_delegation(delegated.client_id, [clients.CALENDAR_SCOPE])
    accepted = deliver(client, payment(second.preference_id))

    assert accepted == 200
    assert read_booking(firestore, second.booking_id)["status"] == "scheduled"
    assert sandbox.stats()["requests"].get(REFRESH_GRANT, 0) == 0
    _assert_no_key_material(caplog, delegated)


def test_a_delegation_for_another_scope_is_refused_as_not_granted(
    delegated: Auth, firestore: Any, sandbox: Any
) -> None:
    sandbox.grant_delegation(delegated.client_id, ["https://www.googleapis.com/auth/calendar"])
    booking_ = write_booking(firestore)

    assert deliver(app_client(), payment(booking_.preference_id)) == 500

    waiting = read_booking(firestore, booking_.booking_id)
    assert waiting["schedulingReason"] == "delegation_refused"
    assert clients.CALENDAR_SCOPE in waiting["schedulingMessage"]


def test_an_admin_email_unknown_to_the_domain_waits_and_says_so(
    delegated: Auth, firestore: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    configure(env, ADMIN_EMAIL="nobody@school.test")
    credentials.forget()
    booking_ = write_booking(firestore)

    assert deliver(app_client(), payment(booking_.preference_id)) == 500

    waiting = read_booking(firestore, booking_.booking_id)
    assert waiting["schedulingReason"] == "delegation_refused"
    assert "invalid_grant" in waiting["schedulingMessage"]
    assert "nobody@school.test" in waiting["schedulingMessage"]
    assert "ADMIN_EMAIL" in waiting["schedulingMessage"]


def _assert_no_key_material(caplog: pytest.LogCaptureFixture, auth: Auth) -> None:
    pieces = ["PRIVATE KEY", "ya29.", "eyJ"]  # a key, an access token, any JWT
    if auth.key:
        body = "".join(auth.key["private_key"].splitlines()[1:-1])
        pieces += [body[i : i + 40] for i in range(0, len(body) - 40, 200)]
    for record in caplog.records:
        line = f"{record.getMessage()} {record.__dict__}"
        assert not [piece for piece in pieces if piece in line], record.getMessage()


def _connect_page(path: str, *, json_: bool = False) -> Any:
    client = functions_framework.create_app("oauth_callback", str(OAUTH_CALLBACK)).test_client()
    headers = {"Accept": "application/json"} if json_ else {}
    return client.get(path, headers=headers)


def test_the_connect_page_tells_the_mode_and_the_delegation_and_offers_no_connect(
    delegated: Auth, firestore: Any, sandbox: Any
) -> None:
    page = _connect_page("/")
    start = _connect_page("/start")
    status = _connect_page("/", json_=True).get_json()

    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "domain-wide delegation" in body
    assert delegated.client_id in body
    assert clients.CALENDAR_SCOPE in body
    assert "Connect Google" not in body
    assert start.status_code == 409
    assert "Location" not in start.headers
    assert status["mode"] == "service_account"
    assert status["state"] == "connected"
    assert status["clientId"] == delegated.client_id
    assert status["keyless"] is (delegated.mode == "keyless")
    assert "PRIVATE KEY" not in body + json.dumps(status)

    sandbox.withdraw_delegation(delegated.client_id)
    credentials.forget()
    refused = _connect_page("/", json_=True).get_json()

    assert refused["state"] == "delegation_refused"
    assert delegated.client_id in refused["problem"]
    requests = sandbox.stats()["requests"]
    assert requests.get(REFRESH_GRANT, 0) == 0
    # Keyless reads no secret at all; with a key, only the key file.
    assert requests.get(SECRET_READS, 0) == (0 if delegated.mode == "keyless" else 2)


def test_iam_refusing_to_sign_waits_and_names_the_role_to_grant(
    firestore: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    # The runtime account was never registered: IAM answers 403 to signJwt, as Google does
    # when the account lacks roles/iam.serviceAccountTokenCreator on itself.
    configure(
        env,
        GOOGLE_AUTH_MODE="service_account",
        GOOGLE_SERVICE_ACCOUNT_EMAIL=SA_EMAIL,
    )
    credentials.forget()
    booking_ = write_booking(firestore)

    assert deliver(app_client(), payment(booking_.preference_id)) == 500

    waiting = read_booking(firestore, booking_.booking_id)
    assert waiting["schedulingReason"] == "signjwt_refused"
    assert "roles/iam.serviceAccountTokenCreator" in waiting["schedulingMessage"]


def test_a_key_in_a_plain_variable_is_refused_and_never_echoed() -> None:
    key = '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE"}'
    with pytest.raises(ConfigError) as raised:
        from_env({"GOOGLE_AUTH_MODE": "service_account", "GOOGLE_SERVICE_ACCOUNT_JSON": key})
    assert "GOOGLE_SERVICE_ACCOUNT_JSON" in raised.value.message
    assert "PRIVATE KEY" not in raised.value.message
    assert "MIIE" not in raised.value.message
