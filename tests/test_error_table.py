"""Every row of docs/errors.md, driven through the sandbox: the error Google sends (in the
body shape Google sends it), what the booking then says, and the one log line.

Scheduling rows deliver a payment to create_event (functions-framework's real app); the
cancellation row a refund; the sync row a sync of the calendar. The library's own
retries are off here (GOOGLE_API_RETRIES=0): that the library retries a 429 or a 503
before classcal sees it is tested in tests/sandbox/test_sandbox_faults.py.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.domain import sync
from shared.google import clients, tokens
from tests.support.scheduling import (
    app_client,
    configure,
    deliver,
    payment,
    read_booking,
    records,
    write_booking,
)

EVENTS = r"/calendar/v3/calendars/[^/]+/events$"
EVENT = r"/calendar/v3/calendars/[^/]+/events/[^/]+$"
TOKEN = r"^/token$"
SECRET = r"/versions/latest:access$"
DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"


@dataclass(frozen=True)
class Row:
    id: str  # the row's first cell in docs/errors.md
    fault: dict[str, Any] | None  # for SandboxControl.fault; None: set up by `setup`
    answer: int  # what create_event answers Pub/Sub: 200 acknowledges, 500 redelivers
    state: str  # the booking's schedulingState (or `scheduled`/`cancelled`: its status)
    reason: str | None  # schedulingReason, and the log line's `reason`
    level: int  # the log line's severity
    setup: str | None = None
    driver: str = "schedule"


def calendar_fault(status: int, reason: str, details: str | None = None, **extra: Any) -> dict:
    fault = {"method": "POST", "path": EVENTS, "status": status, "reason": reason, "count": None}
    if details is not None:
        fault["details"] = details
    return {**fault, **extra}


def secret_fault(status: int, reason: str) -> dict:
    return {"method": "GET", "path": SECRET, "status": status, "reason": reason, "count": None}


WAIT, FAIL = "waiting", "failed"
W, E = logging.WARNING, logging.ERROR
ROWS = [
    Row("calendar 400 invalid", calendar_fault(400, "invalid"), 200, FAIL, "calendar_invalid", E),
    Row(
        "calendar 400 invalid attendee",
        None,
        200,
        "scheduled",
        "attendee_refused_by_google",
        W,
        setup="refused_address",
    ),
    Row(
        "calendar 400 badRequest",
        calendar_fault(400, "badRequest"),
        200,
        FAIL,
        "calendar_badRequest",
        E,
    ),
    Row(
        "calendar 400 timeRangeEmpty",
        calendar_fault(400, "timeRangeEmpty"),
        200,
        FAIL,
        "calendar_timeRangeEmpty",
        E,
    ),
    Row(
        "calendar 401 authError",
        calendar_fault(401, "authError"),
        500,
        WAIT,
        "admin_reconnect_required",
        W,
    ),
    Row(
        "calendar 403 rateLimitExceeded",
        calendar_fault(403, "rateLimitExceeded"),
        500,
        WAIT,
        "google_unavailable",
        W,
    ),
    Row(
        "calendar 403 RATE_LIMIT_EXCEEDED",
        calendar_fault(403, "rateLimitExceeded", "RATE_LIMIT_EXCEEDED"),
        500,
        WAIT,
        "google_unavailable",
        W,
    ),
    Row(
        "calendar 403 userRateLimitExceeded",
        calendar_fault(403, "userRateLimitExceeded"),
        500,
        WAIT,
        "google_unavailable",
        W,
    ),
    Row(
        "calendar 403 quotaExceeded",
        calendar_fault(403, "quotaExceeded"),
        500,
        WAIT,
        "calendar_usage_limits",
        W,
    ),
    Row(
        "calendar 403 dailyLimitExceeded",
        calendar_fault(403, "dailyLimitExceeded"),
        500,
        WAIT,
        "calendar_usage_limits",
        W,
    ),
    Row(
        "calendar 403 forbiddenForNonOrganizer",
        calendar_fault(403, "forbiddenForNonOrganizer"),
        200,
        FAIL,
        "calendar_forbiddenForNonOrganizer",
        E,
    ),
    Row(
        "calendar 403 insufficientPermissions",
        calendar_fault(403, "insufficientPermissions", ""),
        500,
        WAIT,
        "admin_reconnect_required",
        W,
    ),
    Row(
        # Google's current body: status PERMISSION_DENIED, details ACCESS_TOKEN_SCOPE_INSUFFICIENT.
        "calendar 403 ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        calendar_fault(403, "insufficientPermissions"),
        500,
        WAIT,
        "admin_reconnect_required",
        W,
    ),
    Row(
        # Only details names it: classcal reads either list.
        "calendar 403 ACCESS_TOKEN_SCOPE_INSUFFICIENT in details only",
        calendar_fault(403, "accessDenied", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"),
        500,
        WAIT,
        "admin_reconnect_required",
        W,
    ),
    Row(
        "calendar 403 accessNotConfigured",
        calendar_fault(403, "accessNotConfigured", "SERVICE_DISABLED"),
        500,
        WAIT,
        "config_error",
        E,
    ),
    Row("calendar 404 notFound", calendar_fault(404, "notFound"), 500, WAIT, "config_error", E),
    Row(
        "calendar 409 duplicate",
        calendar_fault(409, "duplicate", count=1, commit=True),
        200,
        "scheduled",
        None,
        logging.INFO,
    ),
    Row(
        "calendar 410 deleted",
        {"method": "DELETE", "path": EVENT, "status": 410, "reason": "deleted", "count": 1},
        200,
        "cancelled",
        None,
        logging.INFO,
        driver="cancel",
    ),
    Row(
        "calendar 410 fullSyncRequired",
        {"method": "GET", "path": EVENTS, "status": 410, "reason": "fullSyncRequired", "count": 1},
        200,
        "resynced",
        None,
        W,
        driver="sync",
    ),
    Row(
        "calendar 412 conditionNotMet",
        calendar_fault(412, "conditionNotMet"),
        200,
        FAIL,
        "calendar_conditionNotMet",
        E,
    ),
    Row(
        "calendar 429 rateLimitExceeded",
        calendar_fault(429, "rateLimitExceeded"),
        500,
        WAIT,
        "google_unavailable",
        W,
    ),
    Row(
        "calendar 500 backendError",
        calendar_fault(500, "backendError"),
        500,
        WAIT,
        "google_unavailable",
        W,
    ),
    Row(
        "calendar 503 backendError",
        calendar_fault(503, "backendError"),
        500,
        WAIT,
        "google_unavailable",
        W,
    ),
    *(
        Row(
            f"oauth {error}",
            {"method": "POST", "path": TOKEN, "status": status, "reason": error, "count": None},
            500,
            WAIT,
            code,
            level,
        )
        for error, status, code, level in (
            ("invalid_grant", 400, "admin_reconnect_required", W),
            ("invalid_scope", 400, "admin_reconnect_required", W),
            ("unauthorized_client", 401, "admin_reconnect_required", W),
            ("invalid_client", 401, "config_error", E),
        )
    ),
    Row(
        "secretmanager NOT_FOUND",
        secret_fault(404, "NOT_FOUND"),
        500,
        WAIT,
        "admin_reconnect_required",
        W,
    ),
    Row(
        "secretmanager FAILED_PRECONDITION",
        None,
        500,
        WAIT,
        "admin_reconnect_required",
        W,
        setup="disabled_latest_version",
    ),
    Row(
        "secretmanager PERMISSION_DENIED",
        secret_fault(403, "PERMISSION_DENIED"),
        500,
        WAIT,
        "google_unavailable",
        W,
    ),
]


def test_every_row_of_the_table_is_driven_and_every_driven_row_is_in_the_table() -> None:
    documented = re.findall(r"^\| (\w+ [^|]*?) \|", DOC.read_text(), flags=re.M)
    documented = [d for d in documented if d.split()[0] in ("calendar", "oauth", "secretmanager")]
    assert sorted(documented) == sorted(row.id for row in ROWS)


def _setup(name: str | None, sandbox: Any) -> str | None:
    """Arrange what a fault cannot: returns the student's address to use, if special."""
    if name == "refused_address":
        return "ana(school)@example.com"  # classcal's own check passes it, Google does not
    if name == "disabled_latest_version":
        newest = tokens.list_versions()[0].name
        clients.secret_manager_client().disable_secret_version(name=newest)
    tokens.forget_admin_credentials()
    return None


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_each_documented_error_gets_its_documented_outcome(
    row: Row,
    connected: Any,
    firestore: Any,
    sandbox: Any,
    env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure(env, GOOGLE_API_RETRIES="0")
    sandbox.set_conference(pending_reads=0)
    client = app_client()
    if row.driver == "sync":
        _sync_row(row, sandbox, caplog)
        return
    if row.driver == "cancel":
        booking = write_booking(firestore)
        assert deliver(client, payment(booking.preference_id)) == 200
    email = _setup(row.setup, sandbox)
    booking = (
        write_booking(firestore, student_email=email)
        if email
        else booking
        if row.driver == "cancel"
        else write_booking(firestore)
    )
    if row.fault is not None:
        sandbox.fault(**row.fault)
    caplog.set_level(logging.INFO)

    status = "refunded" if row.driver == "cancel" else "approved"
    answer = deliver(client, payment(booking.preference_id, status))

    stored = read_booking(firestore, booking.booking_id)
    assert answer == row.answer
    if row.state in ("scheduled", "cancelled"):
        assert stored["status"] == row.state
    else:
        assert stored["schedulingState"] == row.state
        assert stored["schedulingReason"] == row.reason
        assert stored["schedulingMessage"]
    lines = records(caplog, booking_id=booking.booking_id)
    if row.reason is not None:
        lines = [r for r in lines if getattr(r, "reason", None) == row.reason]
        assert lines, f"no log line with reason {row.reason}"
        assert lines[0].levelno == row.level
    else:
        assert any(getattr(r, "outcome", None) in (row.state, "cancelled") for r in lines)
        assert all(r.levelno < logging.WARNING for r in lines)
    # One WARNING-or-worse line per delivery at most, and never a traceback for a row.
    assert len([r for r in lines if r.levelno >= logging.WARNING]) <= 1
    assert all(r.exc_info is None for r in caplog.records)
    if row.id == "calendar 400 invalid attendee":
        assert stored["studentInvited"] is False


def _sync_row(row: Row, sandbox: Any, caplog: pytest.LogCaptureFixture) -> None:
    sync.sync_calendar()  # a full list: the sync token is stored
    sandbox.fault(**row.fault)
    caplog.set_level(logging.INFO)

    result = sync.sync_calendar()

    assert result.full_resync
    [line] = [r for r in caplog.records if "sync token expired" in r.getMessage()]
    assert line.levelno == row.level
