"""Injected faults, as the real client libraries see them."""

from __future__ import annotations

import json
import time

import pytest
import requests
from googleapiclient.errors import HttpError

from tests.support.sandbox_clients import ADMIN, CLIENT_ID, CLIENT_SECRET, event_body, no_sleep

EVENTS = r"/calendar/v3/calendars/[^/]+/events$"


@pytest.mark.parametrize(
    ("status", "reason", "domain"),
    [
        (429, "rateLimitExceeded", "usageLimits"),
        (403, "rateLimitExceeded", "usageLimits"),
        (403, "userRateLimitExceeded", "usageLimits"),
        (503, "backendError", "global"),
        (500, "backendError", "global"),
    ],
)
def test_transient_faults_are_retried_by_execute(sandbox, calendar, status, reason, domain):
    sandbox.fault("GET", EVENTS, status, reason, count=3)
    sleeps: list[float] = []

    with pytest.raises(HttpError) as raised:
        calendar.events().list(calendarId="primary").execute()  # no retries by default
    page = no_sleep(calendar.events().list(calendarId="primary"), sleeps).execute(num_retries=3)

    detail = json.loads(raised.value.content)["error"]["errors"][0]
    assert (raised.value.status_code, detail["reason"], detail["domain"]) == (
        status,
        reason,
        domain,
    )
    assert page["kind"] == "calendar#events"
    assert sleeps == [2.0, 4.0]  # random() * 2**retry with random() pinned to 1
    stats = sandbox.stats()
    assert stats["requests"]["calendar.events.list"] == 4
    assert stats["faults_fired"] == 3


def test_fault_body_is_google_shaped(sandbox, calendar):
    sandbox.fault("calendar.events.list", EVENTS, 403, "rateLimitExceeded")

    with pytest.raises(HttpError) as raised:
        calendar.events().list(calendarId="primary").execute()

    error = json.loads(raised.value.content)["error"]
    assert error == {
        "code": 403,
        "message": "Rate Limit Exceeded",
        "errors": [
            {
                "domain": "usageLimits",
                "reason": "rateLimitExceeded",
                "message": "Rate Limit Exceeded",
            }
        ],
    }
    assert raised.value.reason == "Rate Limit Exceeded"


def test_quota_exceeded_is_not_retried(sandbox, calendar):
    sandbox.fault("POST", EVENTS, 403, "quotaExceeded", count=5)
    sleeps: list[float] = []

    with pytest.raises(HttpError) as raised:
        no_sleep(calendar.events().insert(calendarId="primary", body=event_body()), sleeps).execute(
            num_retries=3
        )

    assert raised.value.status_code == 403
    assert json.loads(raised.value.content)["error"]["errors"][0]["reason"] == "quotaExceeded"
    assert sleeps == []
    assert sandbox.stats()["requests"]["calendar.events.insert"] == 1


def test_commit_does_the_work_but_loses_the_answer(sandbox, calendar):
    sandbox.fault("POST", EVENTS, 503, "backendError", commit=True)

    with pytest.raises(HttpError) as raised:
        calendar.events().insert(calendarId="primary", body=event_body(id="committed01")).execute()
    retry = calendar.events().insert(calendarId="primary", body=event_body(id="committed01"))
    with pytest.raises(HttpError) as duplicate:
        retry.execute()

    assert raised.value.status_code == 503
    assert duplicate.value.status_code == 409
    assert [e["id"] for e in sandbox.events(ADMIN)] == ["committed01"]


def test_delay_only_slows_the_answer(sandbox, calendar):
    calendar.events().list(calendarId="primary").execute()  # warm: token already fetched
    sandbox.fault("GET", EVENTS, 0, delay=0.3)

    started = time.monotonic()
    page = calendar.events().list(calendarId="primary").execute()
    elapsed = time.monotonic() - started

    assert page["items"] == []
    assert elapsed >= 0.3


def test_probability_faults_a_share_without_a_count(sandbox, calendar):
    sandbox.fault("GET", EVENTS, 503, "backendError", count=None, probability=0.5)
    outcomes = []

    for _ in range(40):
        try:
            calendar.events().list(calendarId="primary").execute()
            outcomes.append("ok")
        except HttpError:
            outcomes.append("fault")

    assert 5 <= outcomes.count("fault") <= 35
    assert sandbox.stats()["faults_fired"] == outcomes.count("fault")


def test_clear_faults(sandbox, calendar):
    sandbox.fault(None, EVENTS, 500, "backendError", count=100)

    sandbox.clear_faults()
    page = calendar.events().list(calendarId="primary").execute()

    assert page["items"] == []


def test_oauth_token_endpoint_fault_shape(sandbox):
    granted = sandbox.issue_token(ADMIN, CLIENT_ID, "openid")
    sandbox.fault("POST", r"^/token$", 400, "invalid_grant", message="Bad Request")

    response = requests.post(
        f"{sandbox.url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": granted["refresh_token"],
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        timeout=5,
    )

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "Bad Request"}
    assert sandbox.stats()["requests"]["oauth.token"] == 1


def test_unknown_paths_are_404_in_the_apis_shape(sandbox):
    calendar_404 = requests.get(f"{sandbox.url}/calendar/v3/users/me/calendarList", timeout=5)
    secret_404 = requests.get(f"{sandbox.url}/v1/projects/p/nothing", timeout=5)
    wrong_method = requests.delete(f"{sandbox.url}/token", timeout=5)

    assert calendar_404.status_code == 404
    assert calendar_404.json()["error"]["errors"][0]["reason"] == "notFound"
    assert secret_404.json()["error"]["status"] == "NOT_FOUND"
    assert wrong_method.status_code == 405


def test_stats_count_by_discovery_method_id(sandbox, calendar):
    event = calendar.events().insert(calendarId="primary", body=event_body()).execute()
    calendar.events().get(calendarId="primary", eventId=event["id"]).execute()
    calendar.events().get(calendarId="primary", eventId=event["id"]).execute()
    requests.get(f"{sandbox.url}/oauth2/v1/certs", timeout=5)

    requests_seen = sandbox.stats()["requests"]

    assert requests_seen == {
        "oauth.token": 1,
        "oauth.token.refresh_token": 1,
        "calendar.events.insert": 1,
        "calendar.events.get": 2,
        "oauth.certs": 1,
    }


def test_reset_forgets_everything(sandbox, calendar):
    calendar.events().insert(calendarId="primary", body=event_body()).execute()
    sandbox.fault("GET", EVENTS, 500, "backendError")

    sandbox.reset()

    assert sandbox.events(ADMIN) == []
    assert sandbox.stats()["requests"] == {}
    assert requests.get(f"{sandbox.url}/_sandbox/faults", timeout=5).json() == {"faults": []}
    sandbox.register_client(CLIENT_ID, CLIENT_SECRET, ["http://127.0.0.1:9/oauth/callback"])


def test_count_defaults_to_one_and_null_means_unlimited(sandbox, calendar):
    requests.post(
        f"{sandbox.url}/_sandbox/faults",
        json={"method": "GET", "path": EVENTS, "status": 500, "reason": "backendError"},
        timeout=5,
    ).raise_for_status()
    statuses = []
    for _ in range(2):
        try:
            calendar.events().list(calendarId="primary").execute()
            statuses.append(200)
        except HttpError as exc:
            statuses.append(exc.status_code)
    sandbox.fault("GET", EVENTS, 503, "backendError", count=None)
    for _ in range(5):
        with pytest.raises(HttpError):
            calendar.events().list(calendarId="primary").execute()

    assert statuses == [500, 200]
    assert sandbox.stats()["faults_fired"] == 6
