"""EVENT_REMINDERS: each class's event carries the configured reminder overrides, and a
malformed value is refused before anything is made. Through create_event's real app,
against the Firestore emulator and the Google sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from shared.core.config import from_env
from shared.core.errors import ConfigError
from tests.support.scheduling import (
    app_client,
    classcal_events,
    configure,
    deliver,
    payment,
    read_booking,
    records,
    sandbox_calls,
    write_booking,
)


@pytest.fixture
def client(connected: Any) -> Any:
    return app_client()


def test_reminders_parse_in_order() -> None:
    assert from_env({"EVENT_REMINDERS": "email:1440, popup:30"}).event_reminders == (
        ("email", 1440),
        ("popup", 30),
    )
    assert from_env({}).event_reminders == ()
    assert from_env({"EVENT_REMINDERS": "popup:0,email:40320"}).event_reminders == (
        ("popup", 0),
        ("email", 40320),
    )


@pytest.mark.parametrize(
    "value",
    [
        "sms:30",  # Google's methods are email and popup
        "email",
        "email:",
        "email:-5",
        "email:1.5",
        "email:٣٠",  # Arabic-Indic digits: isdigit() says yes, Google says no
        "popup:40321",  # over four weeks
        "email:10,popup:10,email:20,popup:20,email:30,popup:30",  # six: Google takes five
        "popup:10,popup:10",
        "email:30,,popup:10",
        "EMAIL:30",
    ],
)
def test_a_malformed_reminder_setting_is_named_in_the_error(value: str) -> None:
    with pytest.raises(ConfigError, match="EVENT_REMINDERS"):
        from_env({"EVENT_REMINDERS": value})


def test_the_created_event_carries_the_configured_reminders(
    env: pytest.MonkeyPatch, client: Any, firestore: Any, sandbox: Any
) -> None:
    configure(env, EVENT_REMINDERS="email:1440,popup:30")
    booking = write_booking(firestore)

    assert deliver(client, payment(booking.preference_id)) == 200

    [event] = classcal_events(sandbox)
    assert event["reminders"] == {
        "useDefault": False,
        "overrides": [{"method": "email", "minutes": 1440}, {"method": "popup", "minutes": 30}],
    }
    assert read_booking(firestore, booking.booking_id)["status"] == "scheduled"


def test_without_reminders_the_calendar_defaults_apply(
    client: Any, firestore: Any, sandbox: Any
) -> None:
    booking = write_booking(firestore)

    assert deliver(client, payment(booking.preference_id)) == 200

    [event] = classcal_events(sandbox)
    assert event["reminders"] == {"useDefault": True}


def test_a_bad_reminder_setting_is_refused_before_any_calendar_call(
    env: pytest.MonkeyPatch,
    client: Any,
    firestore: Any,
    sandbox: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure(env, EVENT_REMINDERS="sms:30")
    booking = write_booking(firestore)

    status = deliver(client, payment(booking.preference_id))

    assert status == 500  # a redeploy fixes it: the message is kept, not lost
    assert sandbox_calls(sandbox, "calendar.events.insert") == 0
    assert classcal_events(sandbox) == []
    [line] = records(caplog, outcome="retry", reason="config_error")
    assert "EVENT_REMINDERS" in line.getMessage()
    assert read_booking(firestore, booking.booking_id)["status"] == "pending"
