"""create_event as a running functions-framework server: a real Pub/Sub push subscription,
a process killed between the Calendar insert and the Firestore write, and a refresh token
revoked and replaced while the server keeps running."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from localstack import processes
from localstack.constants import ADMIN_EMAIL, CLIENT_ID
from shared.google import clients, tokens
from tests.support.scheduling import (
    activities,
    classcal_events,
    payment,
    post,
    read_booking,
    sandbox_calls,
    wait_for,
    write_booking,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[processes.ManagedProcess]]:
    """Every create_event server a test starts; all stopped at the end."""
    started: list[processes.ManagedProcess] = []
    yield started
    for server in started:
        server.stop()


def _start(servers: list[processes.ManagedProcess], log_dir: Path, **env: str) -> str:
    server = processes.start_function("create_event", env, log_dir)
    servers.append(server)
    return server.url


def _post_quietly(url: str, data: bytes) -> None:
    """A delivery whose server is about to be killed: its broken connection is expected."""
    with contextlib.suppress(OSError):
        post(url, data)


def _post_until_acked(url: str, data: bytes, attempts: int = 60) -> int:
    for attempt in range(1, attempts + 1):
        if post(url, data) == 200:
            return attempt
        time.sleep(0.2)  # Pub/Sub's redelivery backoff, shortened
    raise AssertionError(f"not acknowledged after {attempts} deliveries")


def test_a_payment_published_to_the_topic_schedules_the_booking(
    connected: Any,
    firestore: Any,
    sandbox: Any,
    pubsub: processes.PubSub,
    servers: Any,
    tmp_path: Path,
) -> None:
    url = _start(servers, tmp_path)
    pubsub.create_topic("payments")
    pubsub.create_push_subscription(
        "payments-create-event", "payments", processes.push_url(url, "payments")
    )
    booking = write_booking(firestore)

    pubsub.publish("payments", [payment(booking.preference_id, paymentId="pay-e2e")])

    stored = wait_for(
        lambda: (
            (b := read_booking(firestore, booking.booking_id)).get("status") == "scheduled" and b
        ),
        timeout=60,
        what="the booking to be scheduled",
    )
    assert stored["htmlLink"].startswith("https://meet.google.com/")
    assert stored["paymentId"] == "pay-e2e"
    assert len(classcal_events(sandbox)) == 1
    assert len(activities(firestore)) == 1


def test_a_crash_between_the_insert_and_the_booking_write_ends_with_one_event(
    connected: Any, firestore: Any, sandbox: Any, servers: Any, tmp_path: Path
) -> None:
    env = {"SCHEDULING_LEASE_SECONDS": "2", "GOOGLE_API_RETRIES": "3"}
    url = _start(servers, tmp_path / "first", **env)
    booking = write_booking(firestore)
    message = payment(booking.preference_id, paymentId="pay-crash")
    # Google makes the event and its answer is lost (503); the client's retry is then
    # held by Google long enough for the process to be killed while it waits.
    sandbox.fault(method="POST", path=r"/events$", status=503, commit=True)
    sandbox.fault(method="POST", path=r"/events$", status=503, delay=30)
    first = threading.Thread(target=_post_quietly, args=(url, message), daemon=True)
    first.start()
    wait_for(
        lambda: sandbox_calls(sandbox, "calendar.events.insert") == 2,
        what="the retried insert to be held",
    )
    assert len(classcal_events(sandbox)) == 1  # the event exists; the booking does not know

    servers[0].kill()
    half_done = read_booking(firestore, booking.booking_id)
    second_url = _start(servers, tmp_path / "second", **env)
    _post_until_acked(second_url, message)
    acknowledged_at = datetime.now(UTC)

    assert half_done["status"] == "pending"
    assert "googleEventId" not in half_done
    # The dead process's lease held the booking: no delivery took it over before it expired.
    assert half_done["schedulingLeaseOwner"]
    assert acknowledged_at >= half_done["schedulingLeaseUntil"]
    events = classcal_events(sandbox)
    assert len(events) == 1
    stored = read_booking(firestore, booking.booking_id)
    assert stored["status"] == "scheduled"
    assert stored["googleEventId"] == events[0]["id"]
    assert stored["htmlLink"].startswith("https://meet.google.com/")
    assert stored["paymentId"] == "pay-crash"
    assert "schedulingLeaseOwner" not in stored
    assert len(activities(firestore)) == 1


def test_a_revoked_token_waits_for_the_admin_and_a_new_one_is_picked_up_without_restart(
    connected: dict[str, Any], firestore: Any, sandbox: Any, servers: Any, tmp_path: Path
) -> None:
    url = _start(servers, tmp_path)
    before = write_booking(firestore)
    assert post(url, payment(before.preference_id)) == 200  # the server holds credentials now
    booking = write_booking(firestore)
    message = payment(booking.preference_id)
    status, _ = processes.http(
        "POST", f"{sandbox.url}/revoke?token={connected['refresh_token']}", body=b""
    )
    assert status == 200

    refused = post(url, message)
    waiting = read_booking(firestore, booking.booking_id)
    refreshes = sandbox_calls(sandbox, "oauth.token")
    reads = sandbox_calls(sandbox, "secretmanager.projects.secrets.versions.access")
    refused_again = post(url, message)
    # While the refused token is still the stored one, a redelivery reads the secret once
    # (has the admin reconnected?) and does not ask Google to refresh it again.
    assert sandbox_calls(sandbox, "oauth.token") == refreshes
    assert sandbox_calls(sandbox, "secretmanager.projects.secrets.versions.access") == reads + 1
    granted = sandbox.issue_token(ADMIN_EMAIL, CLIENT_ID, clients.CALENDAR_SCOPE)
    tokens.store_refresh_token(granted["refresh_token"])
    accepted = post(url, message)

    assert refused == refused_again == 500  # Pub/Sub keeps the message
    assert waiting["status"] == "pending"
    assert waiting["schedulingState"] == "waiting"
    assert waiting["schedulingReason"] == "admin_reconnect_required"
    assert "admin" in waiting["schedulingMessage"]
    assert "reconnect" in waiting["schedulingMessage"]
    assert accepted == 200
    assert read_booking(firestore, booking.booking_id)["status"] == "scheduled"
    assert len(classcal_events(sandbox)) == 2


def test_an_admin_reconnecting_while_the_server_runs_is_picked_up_by_the_re_read(
    connected: dict[str, Any], firestore: Any, sandbox: Any, servers: Any, tmp_path: Path
) -> None:
    url = _start(servers, tmp_path)
    first = write_booking(firestore)
    assert post(url, payment(first.preference_id)) == 200  # credentials cached
    reads = sandbox_calls(sandbox, "secretmanager.projects.secrets.versions.access")
    # The admin reconnects: a new grant is stored, and the old refresh token stops working
    # (expired; revoking it would withdraw the whole grant, the new token too, as at Google).
    granted = sandbox.issue_token(ADMIN_EMAIL, CLIENT_ID, clients.CALENDAR_SCOPE)
    tokens.store_refresh_token(granted["refresh_token"])
    assert sandbox.expire_refresh_token(connected["refresh_token"])
    second = write_booking(firestore)

    status = post(url, payment(second.preference_id))

    assert status == 200  # one delivery: invalid_grant, the secret read again, success
    assert read_booking(firestore, second.booking_id)["status"] == "scheduled"
    assert sandbox_calls(sandbox, "secretmanager.projects.secrets.versions.access") == reads + 1
    log = servers[0].log_path.read_text()
    assert connected["refresh_token"] not in log
    assert granted["refresh_token"] not in log


def test_a_refused_token_whose_secret_cannot_be_read_again_is_not_refreshed_again(
    connected: dict[str, Any], firestore: Any, sandbox: Any, servers: Any, tmp_path: Path
) -> None:
    url = _start(servers, tmp_path)
    assert post(url, payment(write_booking(firestore).preference_id)) == 200  # credentials held
    booking = write_booking(firestore)
    processes.http("POST", f"{sandbox.url}/revoke?token={connected['refresh_token']}", body=b"")
    # An operator disables the leaked version too: reading the secret again fails.
    newest = tokens.list_versions()[0].name
    clients.secret_manager_client().disable_secret_version(name=newest)

    first = post(url, payment(booking.preference_id))
    refreshes = sandbox_calls(sandbox, "oauth.token")
    second = post(url, payment(booking.preference_id))

    assert first == second == 500  # retried by Pub/Sub
    assert sandbox_calls(sandbox, "oauth.token") == refreshes  # the refused token stays unused
    assert read_booking(firestore, booking.booking_id)["schedulingState"] == "waiting"
