"""Cloud Function ``guest_invitations``: a group class's guests in its Calendar event (private).

Fed by topic ``guest-changes`` (join_class publishes the booking id after a join or a
leave): guests who joined become attendees of the class's event, guests who left are
removed, with the school's token. A failure is retried by Pub/Sub, then dead-lettered;
maintenance finishes whatever is still pending (see ``shared.domain.guest_invitations``).
"""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.web import pubsub as events


def _handle(message: events.PubSubMessage) -> dict[str, Any]:
    from shared.web.guest_messages import handle_guest_change

    return handle_guest_change(message)


@functions_framework.cloud_event
def guest_invitations(cloud_event: Any) -> None:
    events.run(cloud_event, _handle, name="guest_invitations")
