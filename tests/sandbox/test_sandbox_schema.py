"""The discovery-schema validator and the `fields` selection syntax."""

from __future__ import annotations

import pytest

from sandbox.core import fields
from sandbox.core.schema import DiscoverySchema

CALENDAR = DiscoverySchema.bundled("calendar", "v3")

GOOD_EVENT = {
    "kind": "calendar#event",
    "id": "abcde12345",
    "status": "confirmed",
    "created": "2031-03-03T10:00:00.000Z",
    "start": {
        "dateTime": "2031-03-03T10:00:00-03:00",
        "timeZone": "America/Argentina/Buenos_Aires",
    },
    "end": {"date": "2031-03-04"},
    "sequence": 0,
    "attendees": [{"email": "a@b.test", "responseStatus": "needsAction"}],
    "extendedProperties": {"private": {"bookingId": "bk-1"}},
    "reminders": {"useDefault": True},
    "conferenceData": {"createRequest": {"status": {"statusCode": "pending"}}},
}


def problems(value, schema: str) -> dict[str, str]:
    return {v.path: v.problem for v in CALENDAR.validate(value, schema)}


def test_a_good_event_has_no_violations():
    assert problems(GOOD_EVENT, "Event") == {}


def test_unknown_field_is_a_violation():
    assert problems({**GOOD_EVENT, "meetLink": "x"}, "Event") == {
        "meetLink": "field not defined by the schema"
    }


def test_nested_wrong_types_are_found_with_their_path():
    bad = {
        **GOOD_EVENT,
        "sequence": "0",
        "attendees": [{"email": 5}],
        "reminders": {"useDefault": "yes"},
        "extendedProperties": {"private": {"n": 1}},
    }

    found = problems(bad, "Event")

    assert set(found) == {
        "sequence",
        "attendees[0].email",
        "reminders.useDefault",
        "extendedProperties.private.n",
    }


def test_int64_must_be_a_string():
    assert problems({"expiration": 1767225600000}, "Channel") == {
        "expiration": "expected string, got number"
    }
    assert problems({"expiration": "1767225600000"}, "Channel") == {}
    assert "expiration" in problems({"expiration": "soon"}, "Channel")


def test_formats_are_checked():
    found = problems(
        {"start": {"dateTime": "2031-03-03 10:00", "date": "03/03/2031"}, "created": "yesterday"},
        "Event",
    )

    assert set(found) == {"start.dateTime", "start.date", "created"}


def test_refs_inside_arrays_and_maps():
    bad_list = {"kind": "calendar#events", "items": [GOOD_EVENT, {"id": 7}]}
    bad_freebusy = {"calendars": {"x@y.test": {"busy": [{"start": True}]}}}

    assert problems(bad_list, "Events") == {"items[1].id": "expected string, got number"}
    assert problems(bad_freebusy, "FreeBusyResponse") == {
        "calendars.x@y.test.busy[0].start": "expected string, got boolean"
    }


def test_response_of_a_method_by_id():
    assert CALENDAR.response_ref("calendar.events.list") == "Events"
    assert CALENDAR.response_ref("calendar.events.delete") is None
    assert CALENDAR.validate_response("calendar.events.get", {"bogus": 1})
    assert CALENDAR.validate_response("calendar.events.delete", None) == []


def test_fields_parse_nested_and_slash_forms():
    selection = fields.parse("items(id,start/dateTime),nextPageToken")

    assert selection == {"items": {"id": None, "start": {"dateTime": None}}, "nextPageToken": None}


def test_fields_apply_to_lists_and_objects():
    body = {"items": [GOOD_EVENT, GOOD_EVENT], "kind": "calendar#events"}

    trimmed = fields.apply(body, fields.parse("items(id,start/timeZone)"))

    assert trimmed == {
        "items": [{"id": "abcde12345", "start": {"timeZone": "America/Argentina/Buenos_Aires"}}] * 2
    }


@pytest.mark.parametrize("expression", ["items(id", "items)", ",", "a//b", "items(id,,x)"])
def test_fields_syntax_errors(expression):
    with pytest.raises(fields.FieldsError):
        fields.parse(expression)


def test_fields_unknown_names_are_rejected_against_the_schema():
    fields.check(fields.parse("items(id,attendees(email)),nextSyncToken"), CALENDAR, "Events")

    with pytest.raises(fields.FieldsError):
        fields.check(fields.parse("items(meetLink)"), CALENDAR, "Events")
