"""The calendar webhook's server, notification channels and the admin's own calendar edits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from localstack import processes, stack
from localstack.constants import ADMIN_EMAIL, CALENDAR_CHANGES, CLIENT_ID
from shared.core.config import reset_config
from shared.domain import event_shape, scheduling
from shared.google import clients
from shared.stores import sync_state
from tests.support.scheduling import Booking, read_booking, write_booking

WEBHOOK_SOURCE = processes.FUNCTIONS / "calendar_webhook"
SYNC_SOURCE = processes.FUNCTIONS / "calendar_sync"


@dataclass
class CalendarLink:
    """calendar_webhook (public: verifies, publishes) and calendar_sync (private: syncs
    with the school's token), each under functions-framework, joined by the Pub/Sub
    emulator's topic and push subscription as Terraform joins them."""

    webhook: processes.ManagedProcess
    sync: processes.ManagedProcess

    @property
    def url(self) -> str:
        return self.webhook.url

    def stop(self) -> None:
        self.webhook.stop()
        self.sync.stop()


def start_calendar_link(
    log_dir: Path,
    firestore_emulator: processes.ManagedProcess,
    pubsub: processes.PubSub,
    sandbox_server: processes.ManagedProcess,
) -> CalendarLink:
    env = stack.environment(
        firestore=firestore_emulator.url,
        pubsub=pubsub.host,
        sandbox=sandbox_server.url,
        GOOGLE_API_RETRIES="1",
        LOG_LEVEL="INFO",
    )
    pubsub.create_topic(CALENDAR_CHANGES)
    sync_server = processes.start_function("calendar_sync", env, log_dir)
    try:
        pubsub.create_push_subscription(
            "calendar-changes-calendar-sync",
            CALENDAR_CHANGES,
            processes.push_url(sync_server.url, CALENDAR_CHANGES),
        )
        webhook = processes.start_function("calendar_webhook", env, log_dir)
    except BaseException:
        sync_server.stop()
        raise
    return CalendarLink(webhook, sync_server)


def start_webhook_only(
    log_dir: Path, firestore_emulator: processes.ManagedProcess, pubsub_host: str
) -> processes.ManagedProcess:
    """calendar_webhook alone, for tests of what it refuses or acknowledges (nothing is
    handed on). It holds no credential, so one server can serve a whole module."""
    env = stack.environment(firestore=firestore_emulator.url, pubsub=pubsub_host, LOG_LEVEL="INFO")
    return processes.start_function("calendar_webhook", env, log_dir)


def webhook_lines(server: processes.ManagedProcess) -> list[dict[str, Any]]:
    """A function's JSON log lines so far."""
    lines = []
    for line in server.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


def sync_runs(link: CalendarLink, channel_id: str) -> list[dict[str, Any]]:
    """calendar_sync's closing line of each change message of this channel it handled."""
    return [
        line
        for line in webhook_lines(link.sync)
        if line.get("channel_id") == channel_id and line.get("message") == "done"
    ]


def configure(env: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        env.setenv(name, value)
    reset_config()


def admin_calendar(sandbox: Any) -> Any:
    """A Calendar service for the admin, as Google Calendar's own UI would act on the calendar.

    Its credentials come straight from the sandbox: no refresh, nothing shared with classcal.
    """
    from google.oauth2.credentials import Credentials

    granted = sandbox.issue_token(ADMIN_EMAIL, CLIENT_ID, clients.CALENDAR_SCOPE)
    return clients.calendar_service(Credentials(token=granted["access_token"]))


def scheduled_booking(firestore: Any, **fields: Any) -> Booking:
    """A booking paid and scheduled through create_event's own path (event in the sandbox)."""
    booking = write_booking(firestore, paymentStatus="approved", **fields)
    outcome = scheduling.schedule_booking(booking.booking_id)
    assert outcome.outcome == "scheduled"
    return booking


def move(admin: Any, event_id: str, by: timedelta) -> tuple[datetime, datetime]:
    """Move an event as the admin would; return its new start and end."""
    event = admin.events().get(calendarId="primary", eventId=event_id).execute()
    start = datetime.fromisoformat(event["start"]["dateTime"]) + by
    end = datetime.fromisoformat(event["end"]["dateTime"]) + by
    admin.events().patch(
        calendarId="primary",
        eventId=event_id,
        body={
            "start": {"dateTime": start.isoformat(), "timeZone": event["start"].get("timeZone")},
            "end": {"dateTime": end.isoformat(), "timeZone": event["end"].get("timeZone")},
        },
    ).execute()
    return start, end


def new_meet_link(admin: Any, event_id: str) -> str:
    """Give the event a new Meet conference, as the admin would; return its link."""
    event = (
        admin.events()
        .patch(
            calendarId="primary",
            eventId=event_id,
            conferenceDataVersion=1,
            body={
                "conferenceData": {
                    "createRequest": {
                        "requestId": f"admin-{event_id[:12]}-new",
                        "conferenceSolutionKey": {"type": "hangoutsMeet"},
                    }
                }
            },
        )
        .execute()
    )
    link = event_shape.meet_link(event) or event_shape.meet_link(
        admin.events().get(calendarId="primary", eventId=event_id).execute()
    )
    assert link
    return link


def delete(admin: Any, event_id: str) -> None:
    admin.events().delete(calendarId="primary", eventId=event_id, sendUpdates="none").execute()


def booking(firestore: Any, booking_id: str) -> dict[str, Any]:
    return read_booking(firestore, booking_id)


@dataclass(frozen=True)
class ManualChannel:
    """A channel recorded in Firestore without a watch at Google: notifications come only
    from the test, so a test decides exactly when and what is delivered."""

    id: str
    token: str
    resource_id: str

    def headers(self, state: str = "exists", number: int = 2, **override: str) -> dict[str, str]:
        headers = {
            "X-Goog-Channel-ID": self.id,
            "X-Goog-Channel-Token": self.token,
            "X-Goog-Resource-ID": self.resource_id,
            "X-Goog-Resource-State": state,
            "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/primary/events",
            "X-Goog-Message-Number": str(number),
        }
        headers.update(override)
        return headers


def manual_channel(calendar_id: str = "primary") -> ManualChannel:
    import secrets
    from datetime import UTC

    channel = ManualChannel(
        id=f"test-{secrets.token_hex(8)}",
        token=secrets.token_urlsafe(32),
        resource_id=secrets.token_urlsafe(12),
    )
    sync_state.create_pending_channel(channel.id, channel.token, calendar_id, "http://127.0.0.1:9/")
    sync_state.activate_channel(
        channel.id, channel.resource_id, datetime.now(UTC) + timedelta(days=1)
    )
    return channel


def notify(url: str, headers: dict[str, str]) -> int:
    status, _ = processes.http("POST", url, body=b"", headers=headers, timeout=30)
    return status
