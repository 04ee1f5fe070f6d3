"""Cloud Function ``calendar_sync``: changes made in Google Calendar reach the bookings (private).

Fed by topic ``calendar-changes`` (calendar_webhook publishes each verified change
notification): an incremental sync of the school calendar with the school's token,
applied to the bookings and to the busy-time mirror, exactly once under the sync lease.
A failure is retried by Pub/Sub; the hourly maintenance run syncs anyway. See
``shared.web.calendar_changes`` and docs/contracts/calendar_webhook.md.
"""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.web import pubsub as events


def _handle(message: events.PubSubMessage) -> dict[str, Any]:
    from shared.web.calendar_changes import handle_calendar_change

    return handle_calendar_change(message)


@functions_framework.cloud_event
def calendar_sync(cloud_event: Any) -> None:
    events.run(cloud_event, _handle, name="calendar_sync")
