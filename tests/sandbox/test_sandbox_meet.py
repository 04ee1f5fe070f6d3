"""Meet conferences created through conferenceData.createRequest."""

from __future__ import annotations

import re

import pytest

from tests.support.sandbox_clients import ADMIN, event_body

MEET_URI = re.compile(r"^https://meet\.google\.com/[a-z]{3}-[a-z]{4}-[a-z]{3}$")


def meet_request(request_id: str = "req-1") -> dict:
    return {
        "createRequest": {
            "requestId": request_id,
            "conferenceSolutionKey": {"type": "hangoutsMeet"},
        }
    }


def insert_with_meet(calendar, version: int = 1, request_id: str = "req-1") -> dict:
    body = event_body(conferenceData=meet_request(request_id))
    return (
        calendar.events()
        .insert(calendarId="primary", body=body, conferenceDataVersion=version)
        .execute()
    )


@pytest.fixture(autouse=True)
def conferences_ready_at_once(sandbox):
    """These tests read the conference from the insert's answer: no pending read (the
    default keeps one, as Google may; see test_sandbox_strict.py)."""
    sandbox.set_conference(pending_reads=0)


def status_of(event: dict) -> str:
    return event["conferenceData"]["createRequest"]["status"]["statusCode"]


def test_without_pending_reads_the_insert_response_is_success(calendar):
    event = insert_with_meet(calendar)

    data = event["conferenceData"]
    assert status_of(event) == "success"
    assert MEET_URI.match(event["hangoutLink"])
    assert data["conferenceId"] == event["hangoutLink"].rsplit("/", 1)[1]
    assert data["entryPoints"] == [
        {
            "entryPointType": "video",
            "uri": event["hangoutLink"],
            "label": event["hangoutLink"].removeprefix("https://"),
        }
    ]
    assert data["conferenceSolution"]["key"] == {"type": "hangoutsMeet"}
    assert data["conferenceSolution"]["name"] == "Google Meet"
    assert data["createRequest"]["requestId"] == "req-1"


def test_each_conference_gets_a_fresh_code(calendar):
    first = insert_with_meet(calendar, request_id="a")
    second = insert_with_meet(calendar, request_id="b")

    assert first["hangoutLink"] != second["hangoutLink"]


def test_without_conference_data_version_the_request_is_ignored(sandbox, calendar):
    event = insert_with_meet(calendar, version=0)
    fetched = calendar.events().get(calendarId="primary", eventId=event["id"]).execute()

    assert "conferenceData" not in event
    assert "hangoutLink" not in event
    assert "conferenceData" not in fetched


def test_pending_for_configured_reads_then_success(sandbox, calendar):
    sandbox.set_conference(pending_reads=3, outcome="success")

    event = insert_with_meet(calendar)
    reads = [
        calendar.events().get(calendarId="primary", eventId=event["id"]).execute() for _ in range(3)
    ]

    assert status_of(event) == "pending"
    assert "entryPoints" not in event["conferenceData"]
    assert "hangoutLink" not in event
    assert [status_of(r) for r in reads] == ["pending", "pending", "success"]
    assert MEET_URI.match(reads[-1]["hangoutLink"])


def test_a_listing_counts_as_one_read(sandbox, calendar):
    sandbox.set_conference(pending_reads=2)
    insert_with_meet(calendar)

    listed = calendar.events().list(calendarId="primary").execute()["items"][0]
    again = calendar.events().list(calendarId="primary").execute()["items"][0]

    assert status_of(listed) == "pending"
    assert status_of(again) == "success"


def test_failure_outcome_has_no_entry_points(sandbox, calendar):
    sandbox.set_conference(pending_reads=1, outcome="failure")

    event = insert_with_meet(calendar)
    fetched = calendar.events().get(calendarId="primary", eventId=event["id"]).execute()

    assert status_of(event) == "pending"
    assert status_of(fetched) == "failure"
    assert "entryPoints" not in fetched["conferenceData"]
    assert "hangoutLink" not in fetched


def test_settings_apply_to_conferences_created_after_them(sandbox, calendar):
    before = insert_with_meet(calendar, request_id="early")
    sandbox.set_conference(pending_reads=5)

    fetched = calendar.events().get(calendarId="primary", eventId=before["id"]).execute()

    assert status_of(fetched) == "success"


def test_repeated_request_id_keeps_the_conference(calendar):
    event = insert_with_meet(calendar, request_id="same")

    patched = (
        calendar.events()
        .patch(
            calendarId="primary",
            eventId=event["id"],
            body={"conferenceData": meet_request("same")},
            conferenceDataVersion=1,
        )
        .execute()
    )

    assert patched["hangoutLink"] == event["hangoutLink"]


def test_new_request_id_changes_the_meet_link(calendar):
    event = insert_with_meet(calendar, request_id="first")

    patched = (
        calendar.events()
        .patch(
            calendarId="primary",
            eventId=event["id"],
            body={"conferenceData": meet_request("second")},
            conferenceDataVersion=1,
        )
        .execute()
    )
    plain_patch = (
        calendar.events()
        .patch(calendarId="primary", eventId=event["id"], body={"summary": "renamed"})
        .execute()
    )

    assert patched["hangoutLink"] != event["hangoutLink"]
    assert MEET_URI.match(patched["hangoutLink"])
    assert plain_patch["hangoutLink"] == patched["hangoutLink"]


def test_control_view_shows_conference_without_counting_a_read(sandbox, calendar):
    sandbox.set_conference(pending_reads=2)
    event = insert_with_meet(calendar)

    [dumped] = sandbox.events(ADMIN)
    fetched = calendar.events().get(calendarId="primary", eventId=event["id"]).execute()

    assert dumped["sandbox"]["conference"]["pendingReadsLeft"] == 1
    assert status_of(fetched) == "pending"
