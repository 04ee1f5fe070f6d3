"""The calendar-change message contract (topic ``CALENDAR_CHANGES_TOPIC``, usually
``calendar-changes``), and the private ``calendar_sync`` function's handler.

A message's data is UTF-8 JSON ``{"calendarId": str, "channelId": str,
"messageNumber": int}`` (``messageNumber`` absent when Google sent none), published by
``calendar_webhook`` for each verified change notification. It only says *that* the
calendar changed; what changed is listed from Google with the calendar's sync token, so
a redelivered, reordered or forged message can only cost one more incremental list.
Notifications in a burst are coalesced by the sync lease and ``SYNC_MIN_INTERVAL_SECONDS``
(``shared.domain.sync``). A message for another calendar is acknowledged without effect.
"""

from __future__ import annotations

from typing import Any

from shared.core.config import get_config
from shared.core.errors import InvalidMessage, PermanentError
from shared.core.logs import get_logger
from shared.domain import sync
from shared.web.pubsub import PubSubMessage

log = get_logger(__name__)

MAX_ID = 1024


def calendar_id(data: dict[str, Any]) -> str:
    value = data.get("calendarId")
    if not isinstance(value, str) or not value or len(value) > MAX_ID:
        raise InvalidMessage("calendarId must be a non-empty string")
    channel = data.get("channelId")
    if channel is not None and (not isinstance(channel, str) or len(channel) > MAX_ID):
        raise InvalidMessage("channelId must be a string")
    number = data.get("messageNumber")
    if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
        raise InvalidMessage("messageNumber must be an integer")
    return value


def handle_calendar_change(message: PubSubMessage) -> dict[str, Any]:
    """The calendar_sync handler: one incremental sync (or none, when one running or just
    finished covers this change)."""
    data = message.json_object()
    wanted = calendar_id(data)
    config = get_config()
    if wanted != config.calendar_id:
        raise InvalidMessage(f"the change is for another calendar than {config.calendar_id!r}")
    try:
        result = sync.sync_calendar(min_interval=config.sync_min_interval_seconds)
    except PermanentError as error:
        # Google refused the list itself (classcal's request is wrong): a redelivery
        # cannot fix it, and every later change would fail alike. A person must look.
        log.error(
            f"calendar sync failed: {error.message}",
            extra={"outcome": "failed", "reason": error.code, "channel_id": data.get("channelId")},
        )
        error.logged = True
        raise
    fields: dict[str, Any] = {"channel_id": data.get("channelId"), **result.log_fields()}
    if isinstance(data.get("messageNumber"), int):
        fields["message_number"] = data["messageNumber"]
    return fields
