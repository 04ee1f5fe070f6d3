"""One lease rule for every Firestore document that one worker at a time may hold.

A lease is two fields on the document it guards: an owner (a random token of the
worker) and an expiry. It is taken and given back inside the store's own transaction,
so two workers can never both hold it, and a worker that dies only blocks the document
until the expiry. Used by bookings (one delivery schedules or cancels a booking), the
calendar's sync lease and the channel-upkeep lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class LeaseFields:
    """Where a document keeps its lease: ``<prefix>Owner`` and ``<prefix>Until``."""

    prefix: str

    @property
    def owner_field(self) -> str:
        return f"{self.prefix}Owner"

    @property
    def until_field(self) -> str:
        return f"{self.prefix}Until"

    def holder(self, data: Mapping[str, Any], now: datetime) -> str | None:
        """The owner of an unexpired lease, if any."""
        owner = data.get(self.owner_field)
        until = data.get(self.until_field)
        if isinstance(owner, str) and owner and isinstance(until, datetime) and until > now:
            return owner
        return None

    def held_by_another(self, data: Mapping[str, Any], owner: str, now: datetime) -> bool:
        holder = self.holder(data, now)
        return holder is not None and holder != owner

    def owned_by(self, data: Mapping[str, Any], owner: str) -> bool:
        """Whether ``owner`` wrote the lease (expired or not)."""
        return data.get(self.owner_field) == owner

    def grant(self, owner: str, seconds: float, now: datetime) -> dict[str, Any]:
        """The fields that give ``owner`` the lease for ``seconds``."""
        return {self.owner_field: owner, self.until_field: now + timedelta(seconds=seconds)}

    def cleared(self, value: Any = None) -> dict[str, Any]:
        """The fields that give the lease back (``value``: None, or DELETE_FIELD)."""
        return {self.owner_field: value, self.until_field: value}
