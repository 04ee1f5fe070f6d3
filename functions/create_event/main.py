"""Cloud Function ``create_event``: a payment on Pub/Sub topic ``payments`` acts on its booking.

``approved`` schedules the class (one Calendar event with a Meet link, written back to
the booking); ``refunded``, ``cancelled`` and ``charged_back`` cancel it; other statuses
are recorded. There is no HTTP path: only the payments topic can schedule a class.
A malformed message is logged and acknowledged (retries will not fix it); a transient
failure raises so that Pub/Sub redelivers (see ``shared.web.pubsub``).
"""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.web import pubsub as events


def _handle(message: events.PubSubMessage) -> dict[str, Any]:
    # Imported on the first message, not at cold start's import of this file.
    from shared.web.payments import handle_payment_message

    return handle_payment_message(message)


@functions_framework.cloud_event
def create_event(cloud_event: Any) -> None:
    events.run(cloud_event, _handle, name="create_event")
