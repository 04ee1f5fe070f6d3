"""What the MercadoPago backend stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Refund:
    id: int
    payment_id: int
    amount: float
    created: datetime
    status: str = "approved"


@dataclass
class Payment:
    id: int
    status: str
    status_detail: str
    amount: float
    currency: str
    external_reference: str | None
    order_id: int
    created: datetime
    updated: datetime
    approved: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    refunds: list[Refund] = field(default_factory=list)

    @property
    def refunded_amount(self) -> float:
        return sum(r.amount for r in self.refunds)


@dataclass
class MerchantOrder:
    id: int
    preference_id: str | None
    external_reference: str | None
    payment_ids: list[int]
    created: datetime


@dataclass
class Delivery:
    """One notification the sandbox sent (or could not send)."""

    url: str
    payment_id: str
    action: str
    outcome: str  # delivered | failed | undeliverable
    status: int | None
