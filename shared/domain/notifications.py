"""Google Calendar push notifications, verified and handed on: the public webhook's rules.

The public ``calendar_webhook`` holds no Google credential. A notification is checked
against the channel classcal recorded in Firestore (its id, the digest of its secret
token, the watched resource); a replay (a message number at or below the last one
handled for its channel) is dropped; a change is published to the ``calendar-changes``
topic (``CALENDAR_CHANGES_TOPIC``), whose private ``calendar_sync`` function lists what
changed with the school's token (``shared.domain.sync``). Only once the message is
published is its number recorded, so a notification that could not be handed on (5xx:
Google sends it again) is not taken for a replay when it comes back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.core import signing
from shared.core.config import get_config
from shared.google import pubsub
from shared.stores import sync_state

# Google's own limits on the values we compare; anything longer is not Google's.
MAX_CHANNEL_ID = 64
MAX_CHANNEL_TOKEN = 256
MAX_HEADER = 512

REJECTED = "rejected"  # the webhook answers 403
ACKNOWLEDGED = "acknowledged"  # `sync` handshake
IGNORED = "ignored"  # authentic, but nothing to do (retired channel, another calendar, ...)
QUEUED = "queued"  # a change: published for calendar_sync
REPLAYED = "replayed"  # a message number already handled for this channel: nothing published


@dataclass(frozen=True)
class Notification:
    channel_id: str
    token: str
    resource_id: str
    resource_state: str
    message_number: str

    def __repr__(self) -> str:  # the channel token is a credential
        return (
            f"Notification(channel_id={self.channel_id!r}, state={self.resource_state!r}, "
            f"message_number={self.message_number!r})"
        )


@dataclass(frozen=True)
class NotificationResult:
    status: str
    reason: str = ""
    message_id: str | None = None  # the calendar-changes message, when one was published


def parse_notification(headers: Mapping[str, str]) -> Notification | None:
    """The notification's headers, or None when they cannot be Google's (missing, oversized)."""
    channel_id = headers.get("X-Goog-Channel-ID") or ""
    token = headers.get("X-Goog-Channel-Token") or ""
    resource_id = headers.get("X-Goog-Resource-ID") or ""
    state = headers.get("X-Goog-Resource-State") or ""
    number = headers.get("X-Goog-Message-Number") or ""
    if not channel_id or not token or not state:
        return None
    if len(channel_id) > MAX_CHANNEL_ID or len(token) > MAX_CHANNEL_TOKEN:
        return None
    if any(len(v) > MAX_HEADER for v in (resource_id, state, number)):
        return None
    return Notification(channel_id, token, resource_id, state, number)


def verify(notification: Notification) -> tuple[sync_state.Channel | None, str]:
    """The channel the notification is for, or None and the reason it is refused."""
    channel = sync_state.get_channel(notification.channel_id)
    if channel is None:
        return None, "unknown_channel"
    # Only the token's digest is stored; the digests are compared in constant time.
    if not channel.token_digest or not signing.matches_digest(
        notification.token, channel.token_digest
    ):
        return None, "bad_channel_token"
    # The first `sync` may arrive before the watch response told us the resource id.
    if channel.resource_id and notification.resource_id != channel.resource_id:
        return None, "resource_mismatch"
    return channel, ""


def change_message(calendar_id: str, channel_id: str, number: int | None) -> bytes:
    """The ``calendar-changes`` message: which calendar changed, as told by which channel."""
    body: dict[str, Any] = {"calendarId": calendar_id, "channelId": channel_id}
    if number is not None:
        body["messageNumber"] = number
    return json.dumps(body, separators=(",", ":")).encode()


def handle_notification(headers: Mapping[str, str]) -> NotificationResult:
    """Verify one push notification and, for a change, hand it to calendar_sync."""
    notification = parse_notification(headers)
    if notification is None:
        return NotificationResult(REJECTED, "malformed_headers")
    channel, refusal = verify(notification)
    if channel is None:
        return NotificationResult(REJECTED, refusal)
    if channel.state not in sync_state.LIVE_STATES:
        # Google may keep notifying briefly after channels.stop; the new channel covers it.
        return NotificationResult(IGNORED, f"channel_{channel.state}")
    config = get_config()
    if channel.calendar_id != config.calendar_id:
        return NotificationResult(IGNORED, "other_calendar")
    if notification.resource_state == "sync":
        return NotificationResult(ACKNOWLEDGED, "sync")
    if notification.resource_state not in ("exists", "not_exists"):
        return NotificationResult(IGNORED, "unknown_resource_state")
    number = message_number(notification.message_number)
    if (
        number is not None
        and channel.last_message_number is not None
        and number <= channel.last_message_number
    ):
        # Google numbers a channel's messages in increasing order, and one is recorded
        # only once handed on: this one was (a replay, or an older message overtaken by
        # a newer one, whose sync lists this change too).
        return NotificationResult(IGNORED, REPLAYED)
    # Raises (the webhook answers 5xx, Google sends the notification again) when the
    # topic cannot take it; nothing is recorded then.
    message_id = pubsub.publish(
        config.calendar_changes_topic, change_message(channel.calendar_id, channel.id, number)
    )
    sync_state.record_message(channel.id, number)
    return NotificationResult(QUEUED, message_id=message_id)


def message_number(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) <= 19 else None
