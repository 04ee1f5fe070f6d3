"""The payment message contract: what is accepted, what is acknowledged as malformed, and
what each non-scheduling status does. Malformed messages go through functions-framework's
real app and must change nothing (no Firestore write, no Calendar call)."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from typing import Any

import pytest

from localstack.constants import PROJECT
from localstack.processes import cloud_event_headers
from shared.core.errors import InvalidMessage
from shared.web.payments import Payment, parse_payment
from shared.web.pubsub import MAX_MESSAGE_BYTES
from tests.support.scheduling import (
    app_client,
    deliver,
    payment,
    read_booking,
    records,
    sandbox_calls,
    write_booking,
)

# --- parsing -----------------------------------------------------------------------------


def test_a_full_message_is_parsed_and_unknown_keys_are_ignored() -> None:
    data = {
        "preferenceId": "162275027-fe8b544b",
        "status": "approved",
        "paymentId": "1319",
        "amount": 15000.5,
        "currency": "ARS",
        "merchantOrder": {"id": 7},
    }

    parsed = parse_payment(data)

    assert parsed == Payment("162275027-fe8b544b", "approved", "1319", 15000.5, "ARS")
    assert parsed.booking_fields() == {
        "paymentStatus": "approved",
        "paymentId": "1319",
        "paymentAmount": 15000.5,
        "paymentCurrency": "ARS",
    }


def test_optional_fields_may_be_absent_or_null() -> None:
    parsed = parse_payment({"preferenceId": "p-1", "status": "pending", "amount": None})

    assert parsed == Payment("p-1", "pending")
    assert parsed.booking_fields() == {"paymentStatus": "pending"}


def test_an_amount_of_zero_is_a_valid_amount() -> None:
    assert parse_payment({"preferenceId": "p", "status": "approved", "amount": 0}).amount == 0


MALFORMED_FIELDS = [
    pytest.param({"status": "approved"}, "preferenceId is missing", id="no-preference"),
    pytest.param({"preferenceId": "p"}, "status is missing", id="no-status"),
    pytest.param({"preferenceId": 162275027, "status": "approved"}, "string", id="int-preference"),
    pytest.param({"preferenceId": "", "status": "approved"}, "empty", id="empty-preference"),
    pytest.param({"preferenceId": "   ", "status": "approved"}, "empty", id="blank-preference"),
    pytest.param({"preferenceId": "p" * 257, "status": "approved"}, "over 256", id="long-pref"),
    pytest.param({"preferenceId": "a/b", "status": "approved"}, "'/'", id="slash-preference"),
    pytest.param({"preferenceId": "p\n1", "status": "approved"}, "control", id="control-chars"),
    pytest.param({"preferenceId": "p", "status": ["approved"]}, "string", id="list-status"),
    pytest.param({"preferenceId": "p", "status": "a" * 65}, "over 64", id="long-status"),
    pytest.param({"preferenceId": "p", "status": "approved", "paymentId": 1319}, "paymentId"),
    pytest.param({"preferenceId": "p", "status": "approved", "amount": "15000"}, "number"),
    pytest.param({"preferenceId": "p", "status": "approved", "amount": True}, "number", id="bool"),
    pytest.param({"preferenceId": "p", "status": "approved", "amount": -1}, "negative"),
    pytest.param({"preferenceId": "p", "status": "approved", "amount": float("nan")}, "finite"),
    pytest.param({"preferenceId": "p", "status": "approved", "amount": float("inf")}, "finite"),
    pytest.param({"preferenceId": "p", "status": "approved", "amount": 1e13}, "over"),
    pytest.param({"preferenceId": "p", "status": "approved", "currency": 32}, "currency"),
    pytest.param({"preferenceId": "p", "status": "approved", "currency": "ARSARSARS"}, "over 8"),
]


@pytest.mark.parametrize(("data", "says"), MALFORMED_FIELDS)
def test_a_malformed_field_is_rejected_with_its_name(data: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidMessage) as raised:
        parse_payment(data)

    assert says in raised.value.message


# --- malformed deliveries through the real app -----------------------------------------


def _raw_envelope(data: str) -> dict[str, Any]:
    return {
        "message": {"data": data, "messageId": uuid.uuid4().hex},
        "subscription": f"projects/{PROJECT}/subscriptions/payments-create-event",
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


MALFORMED_DELIVERIES = [
    pytest.param(_raw_envelope("this is not base64!"), "not valid base64", id="not-base64"),
    pytest.param(_raw_envelope(_b64(b"\xff\xfe{}")), "not UTF-8", id="not-utf8"),
    pytest.param(_raw_envelope(_b64(b"{preferenceId: 1")), "not JSON", id="not-json"),
    pytest.param(_raw_envelope(_b64(b"[1, 2]")), "not an object", id="json-array"),
    pytest.param(_raw_envelope(_b64(b'"approved"')), "not an object", id="json-string"),
    pytest.param(_raw_envelope(_b64(b" " * (MAX_MESSAGE_BYTES + 1))), "over", id="oversized-data"),
    pytest.param({"subscription": "x"}, "no Pub/Sub message", id="no-message"),
    pytest.param(_raw_envelope(_b64(b'{"status": "approved"}')), "preferenceId is missing"),
]


@pytest.mark.parametrize(("envelope", "says"), MALFORMED_DELIVERIES)
def test_a_malformed_delivery_is_acknowledged_with_a_clear_log_line_and_changes_nothing(
    connected: Any,
    firestore: Any,
    sandbox: Any,
    caplog: pytest.LogCaptureFixture,
    envelope: dict[str, Any],
    says: str,
) -> None:
    booking = write_booking(firestore)
    before = read_booking(firestore, booking.booking_id)
    client = app_client()
    caplog.set_level(logging.INFO)

    response = client.post("/", json=envelope, headers=cloud_event_headers())

    assert response.status_code == 200  # acknowledged: a retry cannot fix it
    rejected = records(caplog, outcome="rejected", reason="invalid_message")
    assert len(rejected) == 1
    assert says in rejected[0].getMessage()
    assert read_booking(firestore, booking.booking_id) == before
    assert sandbox_calls(sandbox, "calendar.events.insert") == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"status": ["approved"]},
        {"paymentId": 1319},
        {"amount": "15000"},
        {"amount": -5},
        {"amount": float("nan")},
        {"currency": 32},
    ],
    ids=str,
)
def test_a_bad_field_beside_a_real_preference_changes_nothing(
    connected: Any,
    firestore: Any,
    sandbox: Any,
    caplog: pytest.LogCaptureFixture,
    bad: dict[str, Any],
) -> None:
    booking = write_booking(firestore)
    data = {"preferenceId": booking.preference_id, "status": "approved", **bad}
    before = read_booking(firestore, booking.booking_id)
    caplog.set_level(logging.INFO)

    status = deliver(app_client(), json.dumps(data).encode())

    assert status == 200
    assert records(caplog, outcome="rejected", reason="invalid_message")
    assert read_booking(firestore, booking.booking_id) == before
    assert sandbox_calls(sandbox, "calendar.events.insert") == 0


def test_an_unknown_preference_is_acknowledged_and_named(
    connected: Any, firestore: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    status = deliver(app_client(), payment("162275027-unknown"))

    assert status == 200
    rejected = records(caplog, outcome="rejected", reason="booking_not_found")
    assert "162275027-unknown" in rejected[0].getMessage()
    assert sandbox_calls(sandbox, "calendar.events.insert") == 0


def test_two_bookings_with_one_preference_are_not_guessed_between(
    connected: Any, firestore: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    first = write_booking(firestore)
    write_booking(firestore, preferenceId=first.preference_id)
    caplog.set_level(logging.INFO)

    status = deliver(app_client(), payment(first.preference_id))

    assert status == 200
    assert records(caplog, outcome="rejected", reason="duplicate_preference")
    assert sandbox_calls(sandbox, "calendar.events.insert") == 0


# --- statuses that neither schedule nor cancel --------------------------------------------


@pytest.mark.parametrize("status", ["pending", "in_process", "rejected", "authorized"])
def test_another_status_is_recorded_on_a_pending_booking(
    connected: Any, firestore: Any, sandbox: Any, status: str
) -> None:
    booking = write_booking(firestore)

    code = deliver(app_client(), payment(booking.preference_id, status, paymentId="p-9"))

    assert code == 200
    stored = read_booking(firestore, booking.booking_id)
    assert stored["paymentStatus"] == status
    assert stored["paymentId"] == "p-9"
    assert stored["status"] == "pending"
    assert sandbox_calls(sandbox, "calendar.events.insert") == 0


def test_a_late_pending_status_does_not_downgrade_an_approved_payment(
    connected: Any, firestore: Any, sandbox: Any
) -> None:
    # Approved, but still waiting to be scheduled (maintenance looks for these).
    booking = write_booking(firestore, paymentStatus="approved", schedulingState="waiting")

    code = deliver(app_client(), payment(booking.preference_id, "in_process"))

    assert code == 200
    assert read_booking(firestore, booking.booking_id)["paymentStatus"] == "approved"


def test_a_late_rejected_status_does_not_touch_a_scheduled_booking(
    connected: Any, firestore: Any, sandbox: Any
) -> None:
    client = app_client()
    booking = write_booking(firestore)
    assert deliver(client, payment(booking.preference_id)) == 200
    before = read_booking(firestore, booking.booking_id)

    code = deliver(client, payment(booking.preference_id, "rejected"))

    assert code == 200
    assert read_booking(firestore, booking.booking_id) == before
