"""calendar_webhook against replays and bursts, and the channel token kept as a digest.

A running calendar_webhook server, the Firestore emulator and the sandbox; notifications
are posted by the test on a channel recorded in Firestore (no watch at Google), so the
test decides exactly what arrives and when.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from localstack import processes
from localstack.constants import CALENDAR_CHANGES
from shared.core import signing
from shared.core.config import reset_config
from shared.stores import sync_state
from tests.support.calendar_sync import (
    CalendarLink,
    admin_calendar,
    booking,
    manual_channel,
    move,
    notify,
    scheduled_booking,
    sync_runs,
    webhook_lines,
)
from tests.support.scheduling import records, sandbox_calls, wait_for


@pytest.fixture
def moved(connected: Any, firestore: Any, sandbox: Any) -> Any:
    """A channel, and a class moved in Google that no notification has told about yet."""
    from shared.domain import sync

    class_ = scheduled_booking(firestore)
    channel = manual_channel()
    sync.sync_calendar()
    start, _ = move(admin_calendar(sandbox), class_.event_id, timedelta(hours=5))
    return channel, class_, start


def passes(link: CalendarLink, channel_id: str) -> int:
    """Listing passes calendar_sync ran for this channel's changes."""
    return sum(int(line.get("passes") or 0) for line in sync_runs(link, channel_id))


def outcomes(link: CalendarLink, channel_id: str) -> list[str]:
    """What the webhook did with each of this channel's notifications."""
    return [
        str(line.get("outcome"))
        for line in webhook_lines(link.webhook)
        if line.get("channel_id") == channel_id and str(line.get("message", "")).startswith("notif")
    ]


def handled(link: CalendarLink, channel_id: str, count: int) -> list[dict[str, Any]]:
    """Wait until calendar_sync has handled ``count`` change messages of the channel."""
    return wait_for(
        lambda: len(runs := sync_runs(link, channel_id)) >= count and runs,
        timeout=30,
        what=f"calendar_sync to handle {count} change(s)",
    )


def settled(link: CalendarLink, channel_id: str) -> int:
    """Wait until the run that held the sync lease has given it back, owing nothing, and
    has logged its passes; returns the passes of the channel's runs."""

    def done() -> int | None:
        state = sync_state.sync_status("primary")
        if state.get("leaseOwner") is not None or state.get("dirty") is not False:
            return None
        return passes(link, channel_id) or None

    return wait_for(done, timeout=30, what="the sync holding the lease to finish")


@pytest.mark.slow
def test_twenty_replays_of_one_notification_cost_one_sync(
    moved: Any, webhook_server: Any, firestore: Any, sandbox: Any
) -> None:
    channel, class_, start = moved
    lists_before = sandbox_calls(sandbox, "calendar.events.list")

    statuses = [notify(webhook_server.url, channel.headers(number=7)) for _ in range(20)]
    older = notify(webhook_server.url, channel.headers(number=5))

    assert statuses == [200] * 20
    assert older == 200
    handled(webhook_server, channel.id, 1)
    assert booking(firestore, class_.booking_id)["startTime"] == start
    assert outcomes(webhook_server, channel.id).count("queued") == 1
    assert len(sync_runs(webhook_server, channel.id)) == 1
    assert passes(webhook_server, channel.id) == 1
    assert sandbox_calls(sandbox, "calendar.events.list") - lists_before == 1
    assert outcomes(webhook_server, channel.id).count("ignored") == 20
    stored = sync_state.get_channel(channel.id)
    assert stored is not None
    assert stored.last_message_number == 7
    assert stored.last_notification_at is not None


@pytest.mark.slow
def test_a_redelivery_after_a_failure_is_not_a_replay(
    moved: Any, webhook_server: Any, firestore: Any, pubsub: Any
) -> None:
    channel, class_, start = moved
    # The topic is gone: the webhook cannot hand the change on, answers 503, records nothing.
    status, _ = processes.http(
        "DELETE", f"http://{pubsub.host}/v1/projects/{pubsub.project}/topics/{CALENDAR_CHANGES}"
    )
    assert status == 200
    assert notify(webhook_server.url, channel.headers(number=4)) == 503
    stored = sync_state.get_channel(channel.id)
    assert stored is not None
    assert stored.last_message_number is None
    pubsub.create_topic(CALENDAR_CHANGES)
    pubsub.create_push_subscription(
        "calendar-changes-calendar-sync-again",
        CALENDAR_CHANGES,
        processes.push_url(webhook_server.sync.url, CALENDAR_CHANGES),
    )

    # Google sends the same message again: it must still be handed on and synced.
    assert notify(webhook_server.url, channel.headers(number=4)) == 200

    handled(webhook_server, channel.id, 1)
    assert booking(firestore, class_.booking_id)["startTime"] == start
    assert outcomes(webhook_server, channel.id) == ["queued"]


@pytest.mark.slow
def test_a_burst_of_notifications_is_coalesced_into_few_passes(
    moved: Any, webhook_server: Any, firestore: Any, sandbox: Any
) -> None:
    channel, class_, start = moved
    statuses: list[int] = []
    barrier = threading.Barrier(20)

    # Google's first message on a channel is its `sync` handshake; it also warms the
    # instance up (its first request imports the Firestore client).
    assert notify(webhook_server.url, channel.headers(state="sync", number=1)) == 200

    def post(number: int) -> None:
        barrier.wait()
        statuses.append(notify(webhook_server.url, channel.headers(number=number)))

    threads = [threading.Thread(target=post, args=(n,)) for n in range(10, 30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 20, [
        line for line in webhook_lines(webhook_server.webhook) if line.get("severity") != "INFO"
    ][:3]
    # A notification overtaken by a higher-numbered one already handed on is a replay:
    # of twenty at once, some are dropped at the webhook, the rest reach calendar_sync.
    queued = outcomes(webhook_server, channel.id).count("queued")
    assert 1 <= queued <= 20
    assert queued + outcomes(webhook_server, channel.id).count("ignored") == 20
    handled(webhook_server, channel.id, queued)
    assert booking(firestore, class_.booking_id)["startTime"] == start
    # Twenty changes, a few passes: one for the first, then at most one per interval for
    # those that arrived meanwhile (the others find a pass running, or just run).
    assert 1 <= passes(webhook_server, channel.id) <= 3
    state = wait_for(
        lambda: (s := sync_state.sync_status("primary")).get("leaseOwner") is None and s,
        what="the sync lease to be given back",
    )
    assert state["dirty"] is False


@pytest.mark.slow
def test_notifications_in_a_row_start_one_pass_per_interval_at_most(
    moved: Any, webhook_server: Any, firestore: Any
) -> None:
    import time

    channel, _class, _start = moved
    began = time.monotonic()

    for number in (40, 41, 42):
        assert notify(webhook_server.url, channel.headers(number=number)) == 200
        time.sleep(0.2)  # in a row, not at once

    handled(webhook_server, channel.id, 3)
    # Three runs logged is not yet three runs done: the run holding the lease logs last,
    # after its second pass, while the others (and any redelivery) log at once.
    count = settled(webhook_server, channel.id)
    elapsed = time.monotonic() - began
    # The changes after the first pass began need a second; the default
    # SYNC_MIN_INTERVAL_SECONDS is 3, so n passes need at least 3 (n - 1) s.
    assert 2 <= count <= 3
    assert elapsed >= 3.0 * (count - 1) - 0.5, (count, elapsed)


@pytest.mark.slow
def test_the_channel_token_is_stored_only_as_a_digest(
    moved: Any, webhook_server: Any, firestore: Any
) -> None:
    channel, _class, _start = moved

    stored = firestore.collection("calendarChannels").document(channel.id).get().to_dict()

    assert "token" not in stored
    assert stored["tokenDigest"] == signing.digest(channel.token)
    assert channel.token not in str(stored)
    assert notify(webhook_server.url, channel.headers(number=50)) == 200
    wrong = channel.headers(number=51, **{"X-Goog-Channel-Token": stored["tokenDigest"]})
    assert notify(webhook_server.url, wrong) == 403  # the digest itself is not the token


def test_a_channel_of_an_earlier_version_with_a_plain_token_still_verifies(
    connected: Any, lone_webhook: Any, firestore: Any
) -> None:
    from datetime import UTC, datetime

    firestore.collection("calendarChannels").document("test-legacy").set(
        {
            "id": "test-legacy",
            "token": "legacy-plain-token",
            "calendarId": "primary",
            "address": "http://x/",
            "state": "active",
            "resourceId": "res-legacy",
            "expiration": datetime.now(UTC) + timedelta(days=1),
        }
    )
    good = {
        "X-Goog-Channel-ID": "test-legacy",
        "X-Goog-Channel-Token": "legacy-plain-token",
        "X-Goog-Resource-ID": "res-legacy",
        "X-Goog-Resource-State": "sync",
        "X-Goog-Message-Number": "1",
    }

    assert notify(lone_webhook.url, good) == 200
    assert notify(lone_webhook.url, {**good, "X-Goog-Channel-Token": "guess"}) == 403


def test_a_crash_between_the_publish_and_the_record_costs_one_more_sync_and_no_double_change(
    moved: Any, firestore: Any, pubsub: Any, env: pytest.MonkeyPatch, caplog: Any
) -> None:
    """The webhook publishes, then records the message number. Between the two writes the
    record fails (injected: Firestore gone for that one write); Google sends the
    notification again, it is published again, and both messages reach calendar_sync."""
    import functions_framework

    from shared.core.errors import StoreUnavailable
    from shared.domain import notifications
    from tests.support.calendar_sync import SYNC_SOURCE, WEBHOOK_SOURCE
    from tests.support.mercadopago import pull, subscribe

    channel, class_, start = moved
    env.setenv("PUBSUB_EMULATOR_HOST", pubsub.host)
    changes = subscribe(pubsub, CALENDAR_CHANGES)
    record = sync_state.record_message
    failures = iter([True])

    def record_or_crash(channel_id: str, number: int | None) -> None:
        if next(failures, False):
            raise StoreUnavailable("injected: Firestore gone between the two writes")
        record(channel_id, number)

    env.setattr(sync_state, "record_message", record_or_crash)
    webhook = functions_framework.create_app(
        "calendar_webhook", str(WEBHOOK_SOURCE / "main.py")
    ).test_client()

    first = webhook.post("/", headers=channel.headers(number=8))
    again = webhook.post("/", headers=channel.headers(number=8))
    replay = webhook.post("/", headers=channel.headers(number=8))

    assert (first.status_code, again.status_code, replay.status_code) == (503, 200, 200)
    published = pull(pubsub, changes)
    assert [m["messageNumber"] for m in published] == [8, 8]  # the third was a replay
    stored = sync_state.get_channel(channel.id)
    assert stored is not None
    assert stored.last_message_number == 8

    caplog.set_level("INFO")
    syncer = functions_framework.create_app(
        "calendar_sync", str(SYNC_SOURCE / "main.py")
    ).test_client()
    env.setenv("SYNC_MIN_INTERVAL_SECONDS", "0")
    reset_config()
    answers = [
        syncer.post(
            "/",
            json=processes.pubsub_envelope(
                notifications.change_message(m["calendarId"], m["channelId"], m["messageNumber"]),
                subscription="calendar-changes-calendar-sync",
            ),
            headers=processes.cloud_event_headers(topic=CALENDAR_CHANGES),
        ).status_code
        for m in published
    ]

    assert answers == [200, 200]
    done = records(caplog, message="done")
    assert [r.changes_applied for r in done] == [1, 0]  # the second listing finds nothing new
    moved_booking = booking(firestore, class_.booking_id)
    assert moved_booking["startTime"] == start
    assert moved_booking["calendarEventSequence"] >= 1
