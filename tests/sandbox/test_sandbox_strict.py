"""Where Google is stricter than a naive fake: each behaviour as the real client libraries
see it against the sandbox's defaults, and the knob that relaxes it where there is one.
sandbox/README.md ("As strict as Google") gives the public source of each."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import requests
from google.api_core import exceptions as core_exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import Request
from google.cloud import secretmanager
from googleapiclient.errors import HttpError
from test_sandbox_oauth import consent, make_flow
from test_sandbox_push import receiver, watch  # noqa: F401  (receiver is a fixture)

from tests.support.sandbox_clients import (
    ADMIN,
    CALENDAR,
    CALENDAR_READONLY,
    CLIENT_ID,
    MONDAY,
    TEACHER,
    api_key_service,
    credentials,
    event_body,
    rfc3339,
)

EVENTS = r"/calendar/v3/calendars/[^/]+/events$"


def error_of(exc: HttpError) -> dict:
    return json.loads(exc.content)["error"]


# --- error bodies -------------------------------------------------------------------


def test_a_token_without_calendar_scope_gets_googles_current_body(calendar_as):
    service = calendar_as(scope=CALENDAR_READONLY)

    with pytest.raises(HttpError) as raised:
        service.events().insert(calendarId="primary", body=event_body()).execute()

    error = error_of(raised.value)
    assert raised.value.status_code == 403
    assert error["status"] == "PERMISSION_DENIED"
    assert error["message"] == "Request had insufficient authentication scopes."
    assert error["errors"][0]["reason"] == "insufficientPermissions"
    [info] = error["details"]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert info["reason"] == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
    assert info["metadata"]["service"] == "calendar-json.googleapis.com"
    # What google-api-python-client hands its callers: details first.
    assert raised.value.error_details[0]["reason"] == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"


def test_auth_errors_carry_unauthenticated(sandbox):
    url = f"{sandbox.url}/calendar/v3/calendars/primary/events"

    bad = requests.get(url, headers={"Authorization": "Bearer ya29.nothing"}, timeout=5).json()
    missing = requests.get(url, timeout=5).json()

    assert bad["error"]["status"] == "UNAUTHENTICATED"
    assert bad["error"]["errors"][0]["reason"] == "authError"
    assert "details" not in bad["error"]
    assert missing["error"]["status"] == "UNAUTHENTICATED"
    assert missing["error"]["details"][0]["reason"] == "CREDENTIALS_MISSING"


def test_a_429_is_resource_exhausted(sandbox, calendar):
    sandbox.fault("GET", EVENTS, 429, "rateLimitExceeded")

    with pytest.raises(HttpError) as raised:
        calendar.events().list(calendarId="primary").execute()

    error = error_of(raised.value)
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert error["errors"][0]["reason"] == "rateLimitExceeded"


@pytest.mark.parametrize(
    ("status", "reason", "details", "rpc"),
    [
        (403, "rateLimitExceeded", "RATE_LIMIT_EXCEEDED", "PERMISSION_DENIED"),
        (403, "insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "PERMISSION_DENIED"),
        (503, "backendError", "SERVICE_UNAVAILABLE", "UNAVAILABLE"),
    ],
)
def test_faults_can_carry_a_details_reason(sandbox, calendar, status, reason, details, rpc):
    sandbox.fault("GET", EVENTS, status, reason, details=details)

    with pytest.raises(HttpError) as raised:
        calendar.events().list(calendarId="primary").execute()

    error = error_of(raised.value)
    assert (error["code"], error["status"]) == (status, rpc)
    assert error["errors"][0]["reason"] == reason
    assert error["details"][0]["reason"] == details
    assert raised.value.error_details[0]["reason"] == details


def test_an_empty_details_gives_the_old_shape(sandbox, calendar_as):
    sandbox.fault("GET", EVENTS, 403, "insufficientPermissions", details="")

    with pytest.raises(HttpError) as raised:
        calendar_as().events().list(calendarId="primary").execute()

    assert set(error_of(raised.value)) == {"code", "message", "errors"}


@pytest.fixture
def secrets_client(sandbox) -> secretmanager.SecretManagerServiceClient:
    return secretmanager.SecretManagerServiceClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": sandbox.url},
    )


def test_a_disabled_latest_version_is_a_bad_request_over_rest(secrets_client):
    parent = "projects/p"
    secret = secrets_client.create_secret(
        parent=parent, secret_id="s", secret={"replication": {"automatic": {}}}
    )
    version = secrets_client.add_secret_version(parent=secret.name, payload={"data": b"x"})
    secrets_client.disable_secret_version(name=version.name)

    with pytest.raises(core_exceptions.GoogleAPICallError) as raised:
        secrets_client.access_secret_version(name=f"{secret.name}/versions/latest")

    # google-api-core picks the class by HTTP status: BadRequest, not FailedPrecondition.
    assert type(raised.value) is core_exceptions.BadRequest
    assert raised.value.response.json()["error"]["status"] == "FAILED_PRECONDITION"
    assert "DISABLED state" in raised.value.message


def test_secret_manager_faults_can_carry_a_details_reason(sandbox, secrets_client):
    sandbox.fault("GET", r"/versions/", 403, "PERMISSION_DENIED", details="IAM_PERMISSION_DENIED")

    # Over REST a 403 is Forbidden (PermissionDenied is the gRPC class).
    with pytest.raises(core_exceptions.Forbidden) as raised:
        secrets_client.access_secret_version(name="projects/p/secrets/s/versions/latest")

    assert raised.value.reason == "IAM_PERMISSION_DENIED"


# --- attendees ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        "ana maria@example.com",
        "ana(school)@example.com",
        "ana@example",
        "ana..b@example.com",
        ".ana@example.com",
        "ana@exa_mple.com",
        "ana@-example.com",
        '"ana"@example.com',
        "ana,b@example.com",
    ],
)
def test_an_invalid_attendee_email_is_refused(calendar, email):
    body = event_body(attendees=[{"email": email}])

    with pytest.raises(HttpError) as raised:
        calendar.events().insert(calendarId="primary", body=body).execute()

    assert raised.value.status_code == 400
    assert error_of(raised.value)["errors"][0]["reason"] == "invalid"
    assert error_of(raised.value)["errors"][0]["message"] == "Invalid attendee email."


@pytest.mark.parametrize("email", ["ana.b+class@example.com", "o'neil@school.test", "a@b.co"])
def test_plain_addresses_are_accepted(calendar, email):
    body = event_body(attendees=[{"email": email}])

    event = calendar.events().insert(calendarId="primary", body=body).execute()

    assert event["attendees"][0]["email"] == email


# --- consent and revocation ---------------------------------------------------------


def test_a_refresh_token_only_after_a_consent_screen(sandbox, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    tokens = []
    for prompt in (None, None, "consent"):  # first consent, a repeat, a forced consent
        flow = make_flow(sandbox)
        extra = {"prompt": prompt} if prompt else {}
        url, _ = flow.authorization_url(login_hint=ADMIN, **extra)
        tokens.append(flow.fetch_token(code=consent(sandbox, url)["code"]))

    first, repeat, forced = tokens
    assert first["refresh_token"].startswith("1//0")
    assert "refresh_token" not in repeat
    assert forced["refresh_token"].startswith("1//0")
    # The lenient knob: a refresh token on every offline exchange.
    sandbox.set_oauth(refresh_token_without_consent=True)
    flow = make_flow(sandbox)
    url, _ = flow.authorization_url(login_hint=ADMIN)
    assert "refresh_token" in flow.fetch_token(code=consent(sandbox, url)["code"])


def test_revoking_one_token_withdraws_the_whole_grant(sandbox):
    older = credentials(sandbox, ADMIN, CALENDAR)
    newer = credentials(sandbox, ADMIN, CALENDAR)
    other_user = credentials(sandbox, TEACHER, CALENDAR)
    for creds in (older, newer, other_user):
        creds.refresh(Request())

    revoked = requests.post(f"{sandbox.url}/revoke", params={"token": newer.token}, timeout=5)

    assert revoked.status_code == 200
    for creds in (older, newer):
        with pytest.raises(auth_exceptions.RefreshError):
            creds.refresh(Request())
    other_user.refresh(Request())  # another user's grant is untouched
    assert other_user.valid


def test_the_revoke_single_grant_knob(sandbox):
    sandbox.set_oauth(revoke_single_grant=True)
    older, newer = credentials(sandbox), credentials(sandbox)

    requests.post(f"{sandbox.url}/revoke", params={"token": newer.refresh_token}, timeout=5)

    older.refresh(Request())
    assert older.valid


def test_an_expired_refresh_token_leaves_the_grants_others(sandbox):
    older, newer = credentials(sandbox), credentials(sandbox)

    assert sandbox.expire_refresh_token(older.refresh_token)

    with pytest.raises(auth_exceptions.RefreshError):
        older.refresh(Request())
    newer.refresh(Request())
    assert newer.valid


# --- sync and paging ----------------------------------------------------------------


def list_pages(calendar, **params) -> list[dict]:
    pages, token = [], None
    while True:
        extra = {"pageToken": token} if token else {}
        pages.append(calendar.events().list(calendarId="primary", **params, **extra).execute())
        token = pages[-1].get("nextPageToken")
        if not token:
            return pages


@pytest.mark.parametrize(
    "params",
    [
        {"timeMax": rfc3339(MONDAY + timedelta(days=30))},
        {"orderBy": "updated"},
        {"q": "class"},
        {"updatedMin": rfc3339(MONDAY - timedelta(days=3650))},
        {"privateExtendedProperty": "bookingId=b1"},
    ],
)
def test_no_sync_token_after_a_list_with_an_incompatible_parameter(calendar, params):
    calendar.events().insert(calendarId="primary", body=event_body()).execute()

    last = list_pages(calendar, **params)[-1]

    assert "nextSyncToken" not in last


def test_time_min_and_show_deleted_still_end_with_a_sync_token(calendar):
    calendar.events().insert(calendarId="primary", body=event_body()).execute()

    last = list_pages(calendar, timeMin=rfc3339(MONDAY - timedelta(days=1)), showDeleted=True)[-1]

    assert last["nextSyncToken"]


def test_a_sync_token_with_show_deleted_false_is_refused(calendar):
    token = list_pages(calendar)[-1]["nextSyncToken"]

    with pytest.raises(HttpError) as raised:
        calendar.events().list(calendarId="primary", syncToken=token, showDeleted=False).execute()
    with_true = calendar.events().list(calendarId="primary", syncToken=token, showDeleted=True)

    assert raised.value.status_code == 400
    assert error_of(raised.value)["errors"][0]["reason"] == "invalid"
    assert "nextSyncToken" in with_true.execute()


def test_a_listing_of_several_pages_has_an_empty_one_in_between(calendar):
    events = calendar.events()
    for hour in range(5):
        body = event_body(MONDAY + timedelta(hours=hour))
        events.insert(calendarId="primary", body=body).execute()

    pages = list_pages(calendar, maxResults=2)

    assert [len(p["items"]) for p in pages] == [2, 0, 2, 1]
    assert all("nextPageToken" in p for p in pages[:-1])
    assert "nextSyncToken" in pages[-1]


def test_page_cap_and_trailing_empty_page_knobs(sandbox, calendar):
    sandbox.set_calendar_rules(page_cap=1, trailing_empty_page=True)
    for hour in range(2):
        body = event_body(MONDAY + timedelta(hours=hour))
        calendar.events().insert(calendarId="primary", body=body).execute()

    pages = list_pages(calendar, maxResults=2500)

    assert [len(p["items"]) for p in pages] == [1, 0, 1, 0]
    assert "nextSyncToken" in pages[-1]
    assert "nextPageToken" in pages[-2]


def test_tombstones_are_bare_outside_the_organisers_view(sandbox, calendar):
    sandbox.add_calendar(ADMIN, public=True)
    event = calendar.events().insert(calendarId="primary", body=event_body()).execute()
    calendar.events().delete(calendarId="primary", eventId=event["id"]).execute()
    reader = api_key_service(sandbox)

    theirs = reader.events().list(calendarId=ADMIN, showDeleted=True).execute()["items"]
    ours = calendar.events().list(calendarId="primary", showDeleted=True).execute()["items"]
    sandbox.set_calendar_rules(bare_tombstones="everyone")
    later = calendar.events().list(calendarId="primary", showDeleted=True).execute()["items"]
    got = calendar.events().get(calendarId="primary", eventId=event["id"]).execute()

    assert {k for k in theirs[0] if k not in ("kind", "etag")} == {"id", "status"}
    assert theirs[0]["status"] == "cancelled"
    assert ours[0]["summary"] == "English class"
    assert {k for k in later[0] if k not in ("kind", "etag")} == {"id", "status"}
    assert set(got) == {"kind", "etag", "id", "status"}


# --- channels -----------------------------------------------------------------------


def test_every_channel_on_a_calendar_shares_its_resource_id(calendar, calendar_as, receiver):  # noqa: F811
    first = watch(calendar, receiver, "chan-a")
    second = watch(calendar, receiver, "chan-b")
    elsewhere = watch(calendar_as(TEACHER), receiver, "chan-c")

    assert first["resourceId"] == second["resourceId"]
    assert elsewhere["resourceId"] != first["resourceId"]


@pytest.mark.slow
def test_notifications_go_on_for_a_while_after_stop(sandbox, calendar, receiver):  # noqa: F811
    sandbox.set_calendar_rules(channel_linger_seconds=1.0)
    channel = watch(calendar, receiver)
    receiver.next()  # sync

    stop = {"id": channel["id"], "resourceId": channel["resourceId"]}
    calendar.channels().stop(body=stop).execute()
    calendar.events().insert(calendarId="primary", body=event_body()).execute()
    late = receiver.next()
    time.sleep(1.1)
    calendar.events().insert(calendarId="primary", body=event_body(summary="later")).execute()

    assert late["X-Goog-Channel-ID"] == channel["id"]
    assert late["X-Goog-Resource-State"] == "exists"
    assert receiver.nothing_within(0.5)


# --- Meet ---------------------------------------------------------------------------


def test_a_conference_may_still_be_pending_in_the_inserts_answer(calendar):
    body = event_body(
        conferenceData={
            "createRequest": {"requestId": "r1", "conferenceSolutionKey": {"type": "hangoutsMeet"}}
        }
    )

    made = calendar.events().insert(calendarId="primary", body=body, conferenceDataVersion=1)
    made = made.execute()
    read = calendar.events().get(calendarId="primary", eventId=made["id"]).execute()

    assert made["conferenceData"]["createRequest"]["status"]["statusCode"] == "pending"
    assert "hangoutLink" not in made
    assert read["conferenceData"]["createRequest"]["status"]["statusCode"] == "success"
    assert read["hangoutLink"].startswith("https://meet.google.com/")


def test_the_control_knobs_are_checked(sandbox):
    response = requests.post(
        f"{sandbox.url}/_sandbox/calendar_rules", json={"bare_tombstones": "some"}, timeout=5
    )
    unknown = requests.post(f"{sandbox.url}/_sandbox/calendar_rules", json={"x": 1}, timeout=5)

    assert response.status_code == 400
    assert unknown.status_code == 400
    assert CLIENT_ID  # the test client is registered by the fixture
