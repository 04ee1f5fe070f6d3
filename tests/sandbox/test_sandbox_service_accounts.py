"""Service accounts in the sandbox: the JWT-bearer grant checked as Google checks it,
domain-wide delegation granted and withdrawn, and IAM Credentials signJwt; through
google-auth and plain HTTP, as classcal's functions reach them."""

from __future__ import annotations

import json
import time
from typing import Any

import google.auth.transport.requests
import pytest
import requests
from google.auth import crypt, jwt
from google.auth.exceptions import RefreshError
from google.oauth2 import service_account

from sandbox.control import SandboxControl, SandboxControlError
from tests.support.sandbox_clients import ADMIN

SA = "classcal-calendar@school-project.iam.gserviceaccount.com"
EVENTS = "https://www.googleapis.com/auth/calendar.events"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN = "https://oauth2.googleapis.com/token"


@pytest.fixture
def account(sandbox: SandboxControl) -> dict[str, Any]:
    return sandbox.add_service_account(SA, key=True)


def _credentials(key: dict[str, Any], subject: str | None = ADMIN) -> Any:
    return service_account.Credentials.from_service_account_info(
        key, scopes=[EVENTS], subject=subject
    )


def _refresh(credentials: Any) -> Any:
    credentials.refresh(google.auth.transport.requests.Request())
    return credentials


def _grant(sandbox: SandboxControl, assertion: str | bytes) -> requests.Response:
    if isinstance(assertion, bytes):
        assertion = assertion.decode()
    return requests.post(
        f"{sandbox.url}/token",
        data={"grant_type": JWT_BEARER, "assertion": assertion},
        timeout=10,
    )


def _assertion(key: dict[str, Any], **claims: Any) -> bytes:
    now = int(time.time())
    payload = {"iss": SA, "aud": GOOGLE_TOKEN, "scope": EVENTS, "sub": ADMIN, "iat": now}
    payload["exp"] = now + 3600
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    signer = crypt.RSASigner.from_service_account_info(key)
    return jwt.encode(signer, payload)


def test_a_delegated_account_gets_a_token_that_calendar_takes_as_the_subject(
    sandbox: SandboxControl, account: dict[str, Any]
) -> None:
    sandbox.grant_delegation(account["client_id"], [EVENTS])

    credentials = _refresh(_credentials(account["key"]))

    from googleapiclient.discovery import build

    calendar = build(
        "calendar",
        "v3",
        credentials=credentials,
        static_discovery=True,
        client_options={"api_endpoint": f"{sandbox.url}/calendar/v3/"},
    )
    listing = calendar.events().list(calendarId="primary").execute()
    assert listing["summary"] == ADMIN  # the subject's own primary calendar
    requests_ = sandbox.stats()["requests"]
    assert requests_[f"oauth.token.{JWT_BEARER}"] == 1
    assert "oauth.token.refresh_token" not in requests_


def test_without_delegation_google_answers_unauthorized_client(
    sandbox: SandboxControl, account: dict[str, Any]
) -> None:
    with pytest.raises(RefreshError) as refused:
        _refresh(_credentials(account["key"]))
    assert refused.value.args[1]["error"] == "unauthorized_client"

    sandbox.grant_delegation(account["client_id"], [EVENTS])
    assert _refresh(_credentials(account["key"])).token

    assert sandbox.withdraw_delegation(account["client_id"]) is True
    with pytest.raises(RefreshError) as withdrawn:
        _refresh(_credentials(account["key"]))
    assert withdrawn.value.args[1]["error"] == "unauthorized_client"
    assert sandbox.withdraw_delegation(account["client_id"]) is False


def test_delegation_covers_exactly_the_scopes_granted(
    sandbox: SandboxControl, account: dict[str, Any]
) -> None:
    sandbox.grant_delegation(account["client_id"], ["https://www.googleapis.com/auth/calendar"])

    response = _grant(sandbox, _assertion(account["key"]))

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized_client"
    assert "WWW-Authenticate" not in response.headers


def test_an_unknown_subject_is_invalid_grant_and_a_domain_user_is_accepted(
    sandbox: SandboxControl, account: dict[str, Any]
) -> None:
    sandbox.grant_delegation(account["client_id"], [EVENTS])

    unknown = _grant(sandbox, _assertion(account["key"], sub="teacher@school.test"))
    sandbox.grant_delegation(account["client_id"], [EVENTS], users=["teacher@school.test"])
    known = _grant(sandbox, _assertion(account["key"], sub="teacher@school.test"))

    assert unknown.status_code == 400
    assert unknown.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid email or User ID",
    }
    assert known.status_code == 200
    assert known.json()["token_type"] == "Bearer"
    assert "refresh_token" not in known.json()


@pytest.mark.parametrize(
    ("claims", "error", "description"),
    [
        ({"aud": "https://example.test/token"}, "invalid_grant", "Failed audience check"),
        ({"exp": int(time.time()) + 7200}, "invalid_grant", "short-lived token"),
        ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3700}, "invalid_grant", "iat"),
        ({"iat": None}, "invalid_grant", "iat and exp"),
        ({"scope": None}, "invalid_scope", "Invalid OAuth scope"),
        (
            {"iss": "other-account@school-project.iam.gserviceaccount.com"},
            "invalid_grant",
            "account not found",
        ),
    ],
)
def test_assertions_are_checked_as_google_checks_them(
    sandbox: SandboxControl,
    account: dict[str, Any],
    claims: dict[str, Any],
    error: str,
    description: str,
) -> None:
    sandbox.grant_delegation(account["client_id"], [EVENTS])

    response = _grant(sandbox, _assertion(account["key"], **claims))

    assert response.status_code == 400
    assert response.json()["error"] == error
    assert description in response.json()["error_description"]


def test_a_jwt_signed_by_another_key_is_an_invalid_signature(
    sandbox: SandboxControl, account: dict[str, Any]
) -> None:
    sandbox.grant_delegation(account["client_id"], [EVENTS])
    other = sandbox.add_service_account(
        "someone-else@school-project.iam.gserviceaccount.com", key=True
    )
    # Signed by the other account's key, under this account's key id.
    forged = _assertion({**other["key"], "private_key_id": account["key"]["private_key_id"]})

    response = _grant(sandbox, forged)

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid JWT Signature.",
    }
    assert _grant(sandbox, "not-a-jwt").json()["error"] == "invalid_grant"
    assert _grant(sandbox, "").json()["error"] == "invalid_request"


def test_sign_jwt_signs_with_the_google_managed_key_and_the_token_endpoint_accepts_it(
    sandbox: SandboxControl, account: dict[str, Any]
) -> None:
    sandbox.grant_delegation(account["client_id"], [EVENTS])
    now = int(time.time())
    claims = {
        "iss": SA,
        "aud": GOOGLE_TOKEN,
        "scope": EVENTS,
        "sub": ADMIN,
        "iat": now,
        "exp": now + 3600,
    }

    signed = requests.post(
        f"{sandbox.url}/v1/projects/-/serviceAccounts/{SA}:signJwt",
        json={"payload": json.dumps(claims)},
        timeout=10,
    )

    assert signed.status_code == 200
    body = signed.json()
    assert set(body) == {"keyId", "signedJwt"}
    # Not one of the account's own keys: Google's, which never leaves it.
    assert body["keyId"] != account["key"]["private_key_id"]
    assert jwt.decode(body["signedJwt"], verify=False) == claims
    assert _grant(sandbox, body["signedJwt"]).status_code == 200
    assert sandbox.stats()["requests"]["iamcredentials.projects.serviceAccounts.signJwt"] == 1


@pytest.mark.parametrize(
    ("email", "payload", "status"),
    [
        ("nobody-here@school-project.iam.gserviceaccount.com", "{}", 403),
        (SA, "not json", 400),
        (SA, json.dumps({"exp": int(time.time()) + 13 * 3600}), 400),
        (SA, None, 400),
    ],
    # Stable ids: the expiry is computed at collection, and pytest-xdist's workers must
    # collect the same test names.
    ids=["unknown-account", "not-json", "expiry-beyond-12h", "no-payload"],
)
def test_sign_jwt_refuses_like_google(
    account: dict[str, Any], sandbox: SandboxControl, email: str, payload: Any, status: int
) -> None:
    response = requests.post(
        f"{sandbox.url}/v1/projects/-/serviceAccounts/{email}:signJwt",
        json={"payload": payload},
        timeout=10,
    )

    assert response.status_code == status
    assert response.json()["error"]["code"] == status


def test_control_endpoints_refuse_bad_input(sandbox: SandboxControl) -> None:
    with pytest.raises(SandboxControlError) as bad_email:
        sandbox.add_service_account("admin@school.test")
    with pytest.raises(SandboxControlError) as no_scopes:
        sandbox.grant_delegation("123", [])
    assert bad_email.value.status == no_scopes.value.status == 400


def test_reset_forgets_accounts_and_delegation(
    sandbox: SandboxControl, account: dict[str, Any]
) -> None:
    sandbox.grant_delegation(account["client_id"], [EVENTS])
    sandbox.reset()

    response = _grant(sandbox, _assertion(account["key"]))

    assert response.json()["error_description"] == "Invalid grant: account not found"
