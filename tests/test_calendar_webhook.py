"""calendar_webhook: changes made in Google Calendar reach the bookings, exactly once.

The real path: maintenance watches the sandbox calendar with a running webhook server's
URL, the admin changes a classcal event through the Calendar API, the sandbox delivers
a real push notification, and the server's incremental sync updates the booking.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import functions_framework
import pytest

from localstack import processes
from shared.domain import event_shape, maintenance, notifications, sync
from shared.google import clients
from shared.stores import booking_sync, bookings, sync_state
from tests.support.calendar_sync import (
    SYNC_SOURCE,
    WEBHOOK_SOURCE,
    admin_calendar,
    booking,
    configure,
    delete,
    manual_channel,
    move,
    new_meet_link,
    notify,
    scheduled_booking,
    sync_runs,
    webhook_lines,
)
from tests.support.scheduling import records, sandbox_calls, wait_for, write_booking


@pytest.fixture
def watched(connected: Any, webhook_server: Any, env: pytest.MonkeyPatch) -> Any:
    """A live watch channel from maintenance, pointed at the running webhook server."""
    configure(env, CALENDAR_WEBHOOK_URL=webhook_server.url)
    result = maintenance.MaintenanceResult()
    maintenance.ensure_channel(result)
    assert result.channels_created == 1
    return result


def settle() -> dict[str, Any]:
    """Sync, and wait until no sync is running or due: the baseline for a test's change."""
    sync.sync_calendar()
    return wait_for(
        lambda: (
            (s := sync_state.sync_status("primary")).get("syncToken")
            and not s.get("dirty")
            and s.get("leaseOwner") is None
            and s
        ),
        what="the calendar to be in sync",
    )


def _list_calls(sandbox: Any) -> int:
    return sandbox_calls(sandbox, "calendar.events.list")


# --- real notifications ----------------------------------------------------------------


@pytest.mark.slow
def test_an_event_deleted_in_google_cancels_the_booking(
    watched: Any, firestore: Any, sandbox: Any
) -> None:
    class_ = scheduled_booking(firestore)
    settle()  # the baseline sync token
    admin = admin_calendar(sandbox)

    delete(admin, class_.event_id)

    cancelled = wait_for(
        lambda: (b := booking(firestore, class_.booking_id))["status"] == "cancelled" and b,
        timeout=20,
        what="the booking to be cancelled",
    )
    assert cancelled["cancellationReason"] == "cancelled_in_google_calendar"
    assert cancelled["eventDeleted"] is True
    activity = bookings.get_activity(event_shape.activity_id_for(class_.booking_id))
    assert activity is not None
    assert activity["status"] == "cancelled"


@pytest.mark.slow
def test_an_event_moved_in_google_moves_the_booking(
    watched: Any, firestore: Any, sandbox: Any
) -> None:
    class_ = scheduled_booking(firestore)
    settle()
    admin = admin_calendar(sandbox)

    start, end = move(admin, class_.event_id, timedelta(days=1, hours=2))

    moved = wait_for(
        lambda: (b := booking(firestore, class_.booking_id))["startTime"] == start and b,
        timeout=20,
        what="the booking to move",
    )
    assert moved["endTime"] == end
    assert moved["status"] == "scheduled"
    assert moved["calendarEventSequence"] >= 1


@pytest.mark.slow
def test_a_new_meet_link_in_google_reaches_the_booking(
    watched: Any, firestore: Any, sandbox: Any
) -> None:
    class_ = scheduled_booking(firestore)
    settle()
    old_link = booking(firestore, class_.booking_id)["htmlLink"]
    admin = admin_calendar(sandbox)

    link = new_meet_link(admin, class_.event_id)

    assert link != old_link
    wait_for(
        lambda: booking(firestore, class_.booking_id)["htmlLink"] == link,
        timeout=20,
        what="the new Meet link on the booking",
    )


@pytest.mark.slow
def test_changes_to_events_that_are_not_classcals_are_ignored(
    watched: Any, firestore: Any, sandbox: Any
) -> None:
    class_ = scheduled_booking(firestore)
    settle()
    before = booking(firestore, class_.booking_id)
    admin = admin_calendar(sandbox)
    start = datetime.now(UTC) + timedelta(days=2)
    other = (
        admin.events()
        .insert(
            calendarId="primary",
            body={
                "summary": "Staff meeting",
                "start": {"dateTime": start.isoformat()},
                "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
            },
        )
        .execute()
    )
    synced_before = sync_state.sync_status("primary").get("syncedAt")

    delete(admin, other["id"])

    wait_for(
        lambda: sync_state.sync_status("primary").get("syncedAt") != synced_before,
        timeout=20,
        what="a sync after the notification",
    )
    assert booking(firestore, class_.booking_id) == before


@pytest.mark.slow
def test_an_expired_sync_token_recovers_by_a_full_resync(
    watched: Any, firestore: Any, sandbox: Any
) -> None:
    class_ = scheduled_booking(firestore)
    settle()
    old_token = sync_state.sync_status("primary")["syncToken"]
    sandbox.expire_sync_tokens()
    admin = admin_calendar(sandbox)

    start, _ = move(admin, class_.event_id, timedelta(hours=3))

    wait_for(
        lambda: booking(firestore, class_.booking_id)["startTime"] == start,
        timeout=20,
        what="the booking to move after a full resync",
    )
    state = wait_for(
        lambda: (s := sync_state.sync_status("primary")).get("leaseOwner") is None and s,
        what="the sync to finish",
    )
    assert state["syncToken"] != old_token
    assert state["fullSyncAt"] > state["dirtyAt"] - timedelta(seconds=30)
    # The stored token works: a change after the resync is synced incrementally.
    delete(admin, class_.event_id)
    wait_for(
        lambda: booking(firestore, class_.booking_id)["status"] == "cancelled",
        timeout=20,
        what="the booking to be cancelled",
    )


# --- verification ----------------------------------------------------------------------


@pytest.fixture
def moved_quietly(connected: Any, firestore: Any, sandbox: Any) -> Any:
    """A manual channel, and a class moved in Google that no notification has told about."""
    class_ = scheduled_booking(firestore)
    channel = manual_channel()
    settle()
    start, _ = move(admin_calendar(sandbox), class_.event_id, timedelta(hours=5))
    return channel, class_, start


FORGERIES = (
    "unknown channel id",
    "wrong token",
    "token of another channel",
    "no token",
    "wrong resource id",
    "oversized channel id",
    "oversized token",
)


@pytest.mark.slow
def test_forged_notifications_get_403_and_change_nothing(
    moved_quietly: Any, webhook_server: Any, firestore: Any, sandbox: Any
) -> None:
    channel, class_, start = moved_quietly
    other = manual_channel()
    forged = {
        "unknown channel id": channel.headers(**{"X-Goog-Channel-ID": "test-0123456789abcdef"}),
        "wrong token": channel.headers(**{"X-Goog-Channel-Token": channel.token[:-2] + "xx"}),
        "token of another channel": channel.headers(**{"X-Goog-Channel-Token": other.token}),
        "no token": {k: v for k, v in channel.headers().items() if k != "X-Goog-Channel-Token"},
        "wrong resource id": channel.headers(**{"X-Goog-Resource-ID": other.resource_id}),
        "oversized channel id": channel.headers(**{"X-Goog-Channel-ID": "c" * 65}),
        "oversized token": channel.headers(**{"X-Goog-Channel-Token": channel.token * 8}),
    }
    assert set(forged) == set(FORGERIES)
    before = booking(firestore, class_.booking_id)
    state_before = sync_state.sync_status("primary")
    lists_before = _list_calls(sandbox)

    statuses = {name: notify(webhook_server.url, headers) for name, headers in forged.items()}

    assert statuses == dict.fromkeys(FORGERIES, 403)
    assert booking(firestore, class_.booking_id) == before
    assert sync_state.sync_status("primary") == state_before
    assert _list_calls(sandbox) == lists_before
    assert sync_runs(webhook_server, channel.id) == []  # nothing was handed on
    # The genuine notification does change the booking: the forgeries were refused, not moot.
    assert notify(webhook_server.url, channel.headers()) == 200
    wait_for(
        lambda: booking(firestore, class_.booking_id)["startTime"] == start,
        timeout=20,
        what="the genuine notification's change",
    )


def test_the_sync_handshake_is_acknowledged_without_listing(
    connected: Any, lone_webhook: Any, sandbox: Any
) -> None:
    channel = manual_channel()
    lists_before = _list_calls(sandbox)

    status = notify(lone_webhook.url, channel.headers(state="sync", number=1))

    assert status == 200
    assert _list_calls(sandbox) == lists_before


def test_a_notification_before_the_watch_answer_is_verified_by_token(
    connected: Any, lone_webhook: Any, firestore: Any
) -> None:
    # The channel is recorded before events.watch is called; its resource id comes later.
    sync_state.create_pending_channel("test-pending", "pending-secret", "primary", "http://x/")
    good = {
        "X-Goog-Channel-ID": "test-pending",
        "X-Goog-Channel-Token": "pending-secret",
        "X-Goog-Resource-ID": "whatever",
        "X-Goog-Resource-State": "sync",
        "X-Goog-Message-Number": "1",
    }

    assert notify(lone_webhook.url, good) == 200
    assert notify(lone_webhook.url, {**good, "X-Goog-Channel-Token": "guess"}) == 403


def test_only_post_is_accepted(lone_webhook: Any) -> None:
    status, body = processes.http("GET", lone_webhook.url)

    assert status == 405
    assert b"Traceback" not in body


# --- failures ----------------------------------------------------------------------------


@pytest.mark.slow
def test_google_unavailable_in_the_sync_is_retried_by_pubsub_until_the_change_applies(
    moved_quietly: Any, webhook_server: Any, firestore: Any, sandbox: Any
) -> None:
    channel, class_, start = moved_quietly
    lists_before = _list_calls(sandbox)
    # The webhook itself never calls Google: it answers at once. calendar_sync's list
    # fails (with the client's own retry, twice per delivery), so Pub/Sub delivers again.
    sandbox.fault("GET", r"/events$", 503, "backendError", count=4)

    status = notify(webhook_server.url, channel.headers())

    assert status == 200
    wait_for(
        lambda: booking(firestore, class_.booking_id)["startTime"] == start,
        timeout=30,
        what="the change after Pub/Sub's redeliveries",
    )
    assert _list_calls(sandbox) - lists_before >= 5
    state = wait_for(
        lambda: (s := sync_state.sync_status("primary")).get("leaseOwner") is None and s,
        what="the sync lease to be given back",
    )
    assert state["dirty"] is False
    retried = [line for line in sync_runs_all(webhook_server) if line.get("outcome") == "retry"]
    assert retried
    assert all(line.get("reason") == "google_unavailable" for line in retried)


def sync_runs_all(link: Any) -> list[dict[str, Any]]:
    return [line for line in webhook_lines(link.sync) if line.get("logger") == "shared.web.pubsub"]


@pytest.mark.slow
def test_an_unreachable_database_answers_503(connected: Any, env: pytest.MonkeyPatch) -> None:
    channel_headers = {
        "X-Goog-Channel-ID": "test-x",
        "X-Goog-Channel-Token": "t",
        "X-Goog-Resource-ID": "r",
        "X-Goog-Resource-State": "exists",
    }
    env.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")  # nothing listens there
    clients.reset_clients()
    client = functions_framework.create_app(
        "calendar_webhook", str(WEBHOOK_SOURCE / "main.py")
    ).test_client()

    response = client.post("/", headers=channel_headers)

    assert response.status_code == 503
    assert b"Traceback" not in response.data


@pytest.mark.slow
def test_a_permanent_sync_failure_is_acknowledged_with_an_error_log(
    moved_quietly: Any, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    channel, _class, _start = moved_quietly
    sandbox.fault("GET", r"/events$", 400, "invalid", count=None)
    client = functions_framework.create_app(
        "calendar_sync", str(SYNC_SOURCE / "main.py")
    ).test_client()
    data = notifications.change_message("primary", channel.id, 2)

    response = client.post(
        "/",
        json=processes.pubsub_envelope(data, subscription="calendar-changes-calendar-sync"),
        headers=processes.cloud_event_headers(topic="calendar-changes"),
    )

    assert response.status_code == 200  # acknowledged: a redelivery cannot fix it
    failed = records(caplog, outcome="failed", reason="calendar_invalid")
    assert failed
    assert failed[0].levelname == "ERROR"
    assert channel.token not in caplog.text


# --- exactly once ------------------------------------------------------------------------


def test_the_sync_lease_coalesces_concurrent_notifications(firestore: Any) -> None:
    first = sync_state.request_sync("primary", 60)
    assert first is not None
    sync_state.start_pass(first, 60)

    # Arriving while the first lists: marked dirty, no second lister.
    assert sync_state.request_sync("primary", 60) is None

    assert sync_state.finish_pass(first, "token-1", full=False, lease_seconds=60) is False
    assert sync_state.start_pass(first, 60) == "token-1"
    assert sync_state.finish_pass(first, "token-2", full=False, lease_seconds=60) is True
    after = sync_state.request_sync("primary", 60)
    assert after is not None
    assert sync_state.start_pass(after, 60) == "token-2"


def test_an_expired_sync_lease_is_taken_over_and_the_old_holder_stores_nothing(
    firestore: Any,
) -> None:
    stale = sync_state.request_sync("primary", 0.01)
    assert stale is not None
    sync_state.start_pass(stale, 0.01)
    wait_for(lambda: sync_state.request_sync("primary", 60) is not None, timeout=5)

    with pytest.raises(sync_state.LeaseLost):
        sync_state.finish_pass(stale, "stale-token", full=False, lease_seconds=60)

    assert sync_state.sync_status("primary").get("syncToken") != "stale-token"


@pytest.mark.slow
def test_concurrent_syncs_apply_each_change_exactly_once(
    connected: Any, firestore: Any, sandbox: Any
) -> None:
    classes = [scheduled_booking(firestore) for _ in range(3)]
    settle()
    admin = admin_calendar(sandbox)
    moved = move(admin, classes[0].event_id, timedelta(hours=1))
    delete(admin, classes[1].event_id)
    link = new_meet_link(admin, classes[2].event_id)
    results: list[sync.SyncResult] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            barrier.wait()
            results.append(sync.sync_calendar())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(r.applied for r in results) == 3
    assert sum(r.outcomes["cancelled"] for r in results) == 1
    assert booking(firestore, classes[0].booking_id)["startTime"] == moved[0]
    assert booking(firestore, classes[1].booking_id)["status"] == "cancelled"
    assert booking(firestore, classes[2].booking_id)["htmlLink"] == link
    assert sync.sync_calendar().applied == 0
    assert sync_state.sync_status("primary")["leaseOwner"] is None


@pytest.mark.slow
def test_concurrent_notifications_to_the_server_apply_each_change_once(
    moved_quietly: Any, webhook_server: Any, firestore: Any
) -> None:
    channel, class_, start = moved_quietly
    statuses: list[int] = []

    def post(number: int) -> None:
        statuses.append(notify(webhook_server.url, channel.headers(number=number)))

    threads = [threading.Thread(target=post, args=(n,)) for n in range(2, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 5
    runs = wait_for(
        lambda: len(r := sync_runs(webhook_server, channel.id)) == 5 and r,
        timeout=30,
        what="calendar_sync to handle the five changes",
    )
    assert booking(firestore, class_.booking_id)["startTime"] == start
    assert sum(int(line.get("changes_applied") or 0) for line in runs) == 1


# --- applying one change -------------------------------------------------------------------


def test_an_older_event_version_never_overwrites_a_newer_one(
    connected: Any, firestore: Any
) -> None:
    class_ = scheduled_booking(firestore)
    event_id = class_.event_id
    now = datetime.now(UTC).replace(microsecond=0)
    newer_start = class_.start + timedelta(hours=2)

    def apply(start: datetime, updated: datetime, sequence: int) -> str:
        return booking_sync.apply_calendar_change(
            class_.booking_id,
            event_id=event_id,
            cancelled=False,
            start=start,
            end=start + timedelta(hours=1),
            meet_link=None,
            updated=updated,
            sequence=sequence,
            activity_id=event_shape.activity_id_for(class_.booking_id),
        )

    assert apply(newer_start, now, 2) == "updated"
    assert apply(class_.start, now - timedelta(seconds=5), 1) == "stale"
    assert apply(newer_start, now, 2) == "unchanged"
    assert booking(firestore, class_.booking_id)["startTime"] == newer_start


@pytest.mark.parametrize(
    ("fields", "outcome"),
    [
        ({"status": "pending"}, "not_scheduled"),
        ({"status": "cancelled"}, "already_cancelled"),
        ({"status": "scheduled", "googleEventId": "someotherevent"}, "not_linked"),
    ],
)
def test_only_scheduled_bookings_linked_to_the_event_change(
    fields: dict[str, Any], outcome: str, firestore: Any
) -> None:
    class_ = write_booking(firestore, **{"googleEventId": "theevent", **fields})
    before = booking(firestore, class_.booking_id)

    result = sync.apply_event(
        {
            "id": "theevent",
            "status": "cancelled",
            "updated": "2030-01-01T00:00:00.000Z",
            "extendedProperties": {"private": {event_shape.BOOKING_ID_PROPERTY: class_.booking_id}},
        }
    )

    assert result == outcome
    assert booking(firestore, class_.booking_id) == before


def test_a_bare_tombstone_finds_its_booking_by_event_id(connected: Any, firestore: Any) -> None:
    class_ = scheduled_booking(firestore)

    result = sync.apply_event({"id": class_.event_id, "status": "cancelled"})

    assert result == "cancelled"
    assert booking(firestore, class_.booking_id)["status"] == "cancelled"


@pytest.mark.parametrize("booking_id", ["__x__", ".", "..", "a/b", ""])
def test_an_event_naming_an_impossible_booking_id_is_not_classcals(
    connected: Any, firestore: Any, booking_id: str
) -> None:
    # Anyone who can edit the calendar can write this property; a value Firestore cannot
    # take as a document id must not fail the sync (which would block every later change).
    start = datetime.now(UTC) + timedelta(days=1)
    event = {
        "id": "odd0event0id",
        "status": "confirmed",
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
        "extendedProperties": {"private": {event_shape.BOOKING_ID_PROPERTY: booking_id}},
    }

    assert sync.apply_event(event) == "not_classcal"


@pytest.mark.slow
def test_a_stopped_channels_late_notification_is_acknowledged_and_ignored(
    connected: Any, webhook_server: Any, sandbox: Any
) -> None:
    channel = manual_channel()
    sync_state.set_channel_state(channel.id, sync_state.STOPPED)
    lists_before = _list_calls(sandbox)

    status = notify(webhook_server.url, channel.headers())

    assert status == 200  # Google may deliver briefly after channels.stop
    assert _list_calls(sandbox) == lists_before


# --- against Google's strictest documented answers -------------------------------------


def test_a_full_resync_copes_with_bare_tombstones_and_short_pages_and_keeps_a_sync_token(
    connected: Any, firestore: Any, sandbox: Any
) -> None:
    deleted, moved, kept = (scheduled_booking(firestore) for _ in range(3))
    admin = admin_calendar(sandbox)
    admin.events().insert(
        calendarId="primary",
        body={
            "summary": "dentist",
            "start": {"dateTime": (moved.start + timedelta(days=1)).isoformat()},
            "end": {"dateTime": (moved.end + timedelta(days=1)).isoformat()},
        },
    ).execute()
    settle()
    # The token is lost; Google then pages one event at a time, ends on an empty page,
    # and shows every deleted event as nothing but its id and status.
    sandbox.expire_sync_tokens()
    sandbox.set_calendar_rules(page_cap=1, trailing_empty_page=True, bare_tombstones="everyone")
    delete(admin, deleted.event_id)
    start, end = move(admin, moved.event_id, timedelta(hours=2))
    lists_before = _list_calls(sandbox)

    result = sync.sync_calendar()

    assert result.full_resync
    assert result.outcomes["cancelled"] == 1
    assert result.outcomes["updated"] == 1
    assert booking(firestore, deleted.booking_id)["status"] == "cancelled"
    assert booking(firestore, moved.booking_id)["startTime"] == start
    assert booking(firestore, moved.booking_id)["endTime"] == end
    assert booking(firestore, kept.booking_id)["status"] == "scheduled"
    assert _list_calls(sandbox) - lists_before > 8  # many short pages were followed
    token = sync_state.sync_status("primary").get("syncToken")
    assert token  # a full list without timeMax ends with a sync token
    # ... that the next change is synced with, incrementally.
    delete(admin, kept.event_id)
    after = sync.sync_calendar()
    assert not after.full_resync
    assert after.outcomes["cancelled"] == 1
    assert booking(firestore, kept.booking_id)["status"] == "cancelled"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[]",
        b'{"channelId": "c"}',
        b'{"calendarId": ""}',
        b'{"calendarId": 7}',
        b'{"calendarId": "primary", "messageNumber": "7"}',
        b'{"calendarId": "primary", "messageNumber": true}',
        b'{"calendarId": "primary", "channelId": 5}',
        b'{"calendarId": "someone-else@example.test"}',
        b"\xff\xfe",
    ],
    ids=lambda d: d.decode("utf-8", "replace")[:40] or "empty",
)
def test_calendar_sync_acknowledges_a_malformed_change_without_listing(
    connected: Any, sandbox: Any, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    client = functions_framework.create_app(
        "calendar_sync", str(SYNC_SOURCE / "main.py")
    ).test_client()
    lists_before = _list_calls(sandbox)

    response = client.post(
        "/",
        json=processes.pubsub_envelope(data, subscription="calendar-changes-calendar-sync"),
        headers=processes.cloud_event_headers(topic="calendar-changes"),
    )

    assert response.status_code == 200  # acknowledged: a redelivery cannot fix it
    assert _list_calls(sandbox) == lists_before
    rejected = records(caplog, outcome="rejected")
    assert rejected
    assert rejected[0].levelname == "WARNING"
