"""The guest-change message contract (topic ``GUEST_CHANGES_TOPIC``, usually ``guest-changes``).

A message's data is UTF-8 JSON ``{"bookingId": str}``: a nudge that a group class's
guests changed. It carries no guest and no email: the booking holds what is wanted,
so a redelivered, reordered or forged message can only make the private function
bring that booking in step once more.
"""

from __future__ import annotations

from typing import Any

from shared.core import ids
from shared.core.errors import InvalidMessage
from shared.domain import guest_invitations
from shared.web.pubsub import PubSubMessage

MAX_BOOKING_ID = 200


def booking_id(data: dict[str, Any]) -> str:
    value = data.get("bookingId")
    if not isinstance(value, str):
        raise InvalidMessage("bookingId must be a string")
    if not ids.is_document_id(value, max_length=MAX_BOOKING_ID):
        raise InvalidMessage("bookingId is not a document id")
    return value


def handle_guest_change(message: PubSubMessage) -> dict[str, Any]:
    """The guest_invitations handler: parse the nudge, then sync that class's guests."""
    return guest_invitations.sync_guests(booking_id(message.json_object()))
