"""events.watch push channels, delivered to a receiver running in the test."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from googleapiclient.errors import HttpError

from tests.support.sandbox_clients import ADMIN, TEACHER, api_key_service, event_body


@dataclass
class Receiver:
    """A webhook endpoint: records each notification's headers; can answer errors first."""

    url: str
    received: queue.Queue[dict[str, str]] = field(default_factory=queue.Queue)
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200

    def next(self, timeout: float = 3.0) -> dict[str, str]:
        return self.received.get(timeout=timeout)

    def nothing_within(self, seconds: float) -> bool:
        try:
            self.received.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            target = holder[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            status = target.statuses.pop(0) if target.statuses else 200
            if status == 200:
                target.received.put({**dict(self.headers.items()), "_body": body.decode()})
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(f"http://127.0.0.1:{server.server_port}/hook"))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()


def watch(calendar, receiver: Receiver, channel_id: str = "chan-1", **extra) -> dict:
    body = {"id": channel_id, "type": "web_hook", "address": receiver.url, **extra}
    return calendar.events().watch(calendarId="primary", body=body).execute()


def test_sync_then_exists_on_every_change(calendar, receiver):
    channel = watch(calendar, receiver, token="tenant=school")

    sync = receiver.next()
    event = calendar.events().insert(calendarId="primary", body=event_body()).execute()
    created = receiver.next()
    calendar.events().patch(
        calendarId="primary", eventId=event["id"], body={"summary": "x"}
    ).execute()
    patched = receiver.next()
    calendar.events().delete(calendarId="primary", eventId=event["id"]).execute()
    deleted = receiver.next()

    assert channel["kind"] == "api#channel"
    assert channel["id"] == "chan-1"
    assert channel["token"] == "tenant=school"
    assert channel["resourceUri"].endswith("/events?alt=json")
    assert sync["X-Goog-Resource-State"] == "sync"
    assert sync["X-Goog-Message-Number"] == "1"
    assert sync["X-Goog-Channel-ID"] == "chan-1"
    assert sync["X-Goog-Resource-ID"] == channel["resourceId"]
    assert sync["X-Goog-Resource-URI"] == channel["resourceUri"]
    assert sync["X-Goog-Channel-Token"] == "tenant=school"
    assert sync["_body"] == ""
    expiration = parsedate_to_datetime(sync["X-Goog-Channel-Expiration"])
    assert abs(expiration.timestamp() * 1000 - int(channel["expiration"])) < 1000
    assert [n["X-Goog-Resource-State"] for n in (created, patched, deleted)] == ["exists"] * 3
    assert [int(n["X-Goog-Message-Number"]) for n in (created, patched, deleted)] == [2, 3, 4]


def test_default_expiration_is_a_week_and_earlier_is_honoured(calendar, receiver):
    now_ms = datetime.now(UTC).timestamp() * 1000
    week_ms = 7 * 24 * 3600 * 1000

    default = watch(calendar, receiver, "chan-default")
    early = watch(calendar, receiver, "chan-early", expiration=str(int(now_ms + 60_000)))
    late = watch(calendar, receiver, "chan-late", expiration=str(int(now_ms + 30 * week_ms)))

    assert abs(int(default["expiration"]) - (now_ms + week_ms)) < 5000
    assert abs(int(early["expiration"]) - (now_ms + 60_000)) < 1000
    assert int(late["expiration"]) <= now_ms + week_ms + 5000


def test_stop_ends_notifications(sandbox, calendar, receiver):
    # At once when no linger is set (by default they go on briefly: test_sandbox_strict.py).
    sandbox.set_calendar_rules(channel_linger_seconds=0)
    channel = watch(calendar, receiver)
    receiver.next()

    result = (
        calendar.channels()
        .stop(body={"id": channel["id"], "resourceId": channel["resourceId"]})
        .execute()
    )
    calendar.events().insert(calendarId="primary", body=event_body()).execute()

    assert result == ""
    assert receiver.nothing_within(0.5)


def test_stop_of_unknown_channel_is_404(calendar):
    with pytest.raises(HttpError) as raised:
        calendar.channels().stop(body={"id": "nope", "resourceId": "nope"}).execute()

    assert raised.value.status_code == 404
    assert json.loads(raised.value.content)["error"]["errors"][0]["reason"] == "notFound"


@pytest.mark.slow
def test_expired_channel_gets_nothing(calendar, receiver):
    soon = int(datetime.now(UTC).timestamp() * 1000) + 600
    watch(calendar, receiver, expiration=str(soon))
    receiver.next()

    time.sleep(0.8)
    calendar.events().insert(calendarId="primary", body=event_body()).execute()

    assert receiver.nothing_within(0.4)


def test_server_errors_are_retried_in_order(sandbox, calendar, receiver):
    receiver.statuses.extend([503, 500])

    watch(calendar, receiver)
    calendar.events().insert(calendarId="primary", body=event_body()).execute()
    first, second = receiver.next(), receiver.next()

    assert first["X-Goog-Resource-State"] == "sync"
    assert second["X-Goog-Message-Number"] == "2"
    [channel] = sandbox.channels()
    assert channel["deliveries"][0]["attempts"] == 3
    assert channel["deliveries"][0]["outcome"] == "delivered"


def test_duplicate_channel_id_is_rejected(calendar, receiver):
    watch(calendar, receiver)

    with pytest.raises(HttpError) as raised:
        watch(calendar, receiver)

    assert raised.value.status_code == 400
    assert json.loads(raised.value.content)["error"]["errors"][0]["reason"] == "channelIdNotUnique"


@pytest.mark.parametrize(
    "address", ["http://example.com/hook", "ftp://127.0.0.1/hook", "http://10.0.0.1/hook"]
)
def test_address_must_be_https_or_loopback_http(calendar, address):
    body = {"id": "chan-x", "type": "web_hook", "address": address}

    with pytest.raises(HttpError) as raised:
        calendar.events().watch(calendarId="primary", body=body).execute()

    assert raised.value.status_code == 400


def test_https_addresses_are_recorded_not_contacted(sandbox, calendar):
    body = {"id": "chan-https", "type": "web_hook", "address": "https://hooks.school.test/calendar"}

    calendar.events().watch(calendarId="primary", body=body).execute()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not sandbox.channels()[0]["deliveries"]:
        time.sleep(0.02)

    [channel] = sandbox.channels()
    assert channel["deliveries"][0]["outcome"] == "undeliverable"
    assert channel["owner"] == ADMIN


def test_watch_needs_a_user_and_stop_needs_the_same_one(sandbox, calendar, calendar_as, receiver):
    body = {"id": "chan-key", "type": "web_hook", "address": receiver.url}
    with pytest.raises(HttpError) as keyed:
        api_key_service(sandbox).events().watch(calendarId=ADMIN, body=body).execute()
    channel = watch(calendar, receiver)

    with pytest.raises(HttpError) as stranger:
        calendar_as(TEACHER).channels().stop(
            body={"id": channel["id"], "resourceId": channel["resourceId"]}
        ).execute()

    assert keyed.value.status_code == 401
    assert stranger.value.status_code == 404
