"""An expected retry is one WARNING line and a retryable status, never a traceback.

create_event runs under a real functions-framework server (as Cloud Functions serves
it), so what the framework itself logs is in its output too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from localstack import processes, stack
from tests.support.scheduling import payment, post, write_booking


def _create_event(
    firestore_emulator: processes.ManagedProcess,
    sandbox_server: processes.ManagedProcess,
    log_dir: Path,
) -> processes.ManagedProcess:
    """create_event under functions-framework: no client retries, quick conference polls."""
    env = stack.environment(
        firestore=firestore_emulator.url,
        sandbox=sandbox_server.url,
        GOOGLE_API_RETRIES="0",
        CONFERENCE_POLL_DELAYS="0.01",
        LOG_LEVEL="INFO",
    )
    return processes.start_function("create_event", env, log_dir, signature_type="cloudevent")


def _lines(server: processes.ManagedProcess) -> list[str]:
    return server.log_path.read_text(errors="replace").splitlines()


@pytest.mark.slow
def test_redeliveries_for_google_503s_and_busy_bookings_log_no_traceback(
    connected: dict[str, Any],
    firestore: Any,
    sandbox: Any,
    firestore_emulator: processes.ManagedProcess,
    sandbox_server: processes.ManagedProcess,
    tmp_path: Path,
) -> None:
    server = _create_event(firestore_emulator, sandbox_server, tmp_path)
    try:
        sandbox.fault(method="POST", path=r"/events$", status=503, reason="backendError", count=3)
        unavailable = write_booking(firestore)
        busy = write_booking(
            firestore,
            schedulingLeaseOwner="another-delivery",
            schedulingLeaseUntil=datetime.now(UTC) + timedelta(minutes=5),
        )
        statuses = [post(server.url, payment(unavailable.preference_id)) for _ in range(3)]
        statuses += [post(server.url, payment(busy.preference_id)) for _ in range(2)]
    finally:
        server.stop()

    assert statuses == [500] * 5  # retryable: Pub/Sub redelivers
    lines = _lines(server)
    assert not [line for line in lines if "Traceback" in line]
    assert not [line for line in lines if "Exception on" in line]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    warnings = [r for r in records if r.get("severity") == "WARNING"]
    errors = [r for r in records if r.get("severity") in ("ERROR", "CRITICAL")]
    assert errors == []
    # One WARNING per delivery: the reason, said once.
    assert len(warnings) == 5, warnings
    assert {r.get("reason") for r in warnings} == {"google_unavailable", "booking_busy"}


@pytest.mark.slow
def test_redeliveries_while_the_meet_conference_is_pending_log_no_traceback(
    connected: dict[str, Any],
    firestore: Any,
    sandbox: Any,
    firestore_emulator: processes.ManagedProcess,
    sandbox_server: processes.ManagedProcess,
    tmp_path: Path,
) -> None:
    server = _create_event(firestore_emulator, sandbox_server, tmp_path)
    try:
        sandbox.set_conference(pending_reads=10)  # Google is slow to make the Meet link
        pending = write_booking(firestore)
        statuses = [post(server.url, payment(pending.preference_id)) for _ in range(2)]
        sandbox.set_conference(pending_reads=0)
        statuses.append(post(server.url, payment(pending.preference_id)))
    finally:
        server.stop()

    # The first two wait for the link (the second finds the event by its id: 409); the
    # conference of that event stays pending for its reads, so the third waits too.
    assert statuses[:2] == [500, 500]
    lines = _lines(server)
    assert not [line for line in lines if "Traceback" in line]
    assert not [line for line in lines if "Exception on" in line]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    warnings = [r for r in records if r.get("severity") == "WARNING"]
    assert [r for r in records if r.get("severity") in ("ERROR", "CRITICAL")] == []
    assert len(warnings) == statuses.count(500), warnings
    assert {r.get("reason") for r in warnings} == {"conference_pending"}
