"""One access-token refresh per instance, however many deliveries arrive at once."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from shared.google import tokens
from tests.support.scheduling import app_client, deliver, payment, read_booking, write_booking


def token_requests(sandbox: Any) -> int:
    return int(sandbox.stats()["requests"].get("oauth.token", 0))


@pytest.mark.slow
def test_sixteen_concurrent_first_deliveries_refresh_the_token_once(
    connected: dict[str, Any], firestore: Any, sandbox: Any
) -> None:
    booked = [write_booking(firestore) for _ in range(16)]
    tokens.forget_admin_credentials()  # a new instance: no access token yet
    before = token_requests(sandbox)
    barrier = threading.Barrier(16)
    statuses: list[int] = []

    def one(message: bytes) -> None:
        client = app_client()
        barrier.wait()
        statuses.append(deliver(client, message))

    threads = [threading.Thread(target=one, args=(payment(b.preference_id),)) for b in booked]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert statuses == [200] * 16
    assert token_requests(sandbox) - before == 1
    assert all(read_booking(firestore, b.booking_id)["status"] == "scheduled" for b in booked)


def test_no_refresh_while_the_cached_token_is_valid(
    connected: dict[str, Any], firestore: Any, sandbox: Any
) -> None:
    first = write_booking(firestore)
    assert deliver(app_client(), payment(first.preference_id)) == 200
    before = token_requests(sandbox)

    for booking in [write_booking(firestore) for _ in range(5)]:
        assert deliver(app_client(), payment(booking.preference_id)) == 200

    assert token_requests(sandbox) == before
