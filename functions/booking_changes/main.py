"""Cloud Function ``booking_changes``: the platform moves or cancels a class (``booking-changes``).

``reschedule`` moves a scheduled class to a free time, patching the same Calendar event
(same id, same Meet link); ``cancel`` cancels it as a refund does, without touching the
payment. A malformed message is logged and acknowledged; a transient failure raises so
that Pub/Sub redelivers (see ``shared.web.pubsub``). Contract:
docs/contracts/booking_changes.md.
"""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.web import pubsub as events


def _handle(message: events.PubSubMessage) -> dict[str, Any]:
    # Imported on the first message, not at cold start's import of this file.
    from shared.web.booking_changes import handle_booking_change_message

    return handle_booking_change_message(message)


@functions_framework.cloud_event
def booking_changes(cloud_event: Any) -> None:
    events.run(cloud_event, _handle, name="booking_changes")
