"""Cloud Function ``calendar_maintenance``: hourly upkeep (Cloud Scheduler through Pub/Sub).

Keeps one live Calendar watch channel, catches up on changes a lost notification may
have missed, and reconciles bookings with the calendar. The message body is ignored:
every run does the same bounded work, so a redelivery or an extra run is harmless.
"""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.web import pubsub as events


def _handle(_message: events.PubSubMessage) -> dict[str, Any]:
    from shared.domain import maintenance

    return maintenance.run()


@functions_framework.cloud_event
def calendar_maintenance(cloud_event: Any) -> None:
    events.run(cloud_event, _handle, name="calendar_maintenance")
