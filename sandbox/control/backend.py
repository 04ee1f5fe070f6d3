"""What the control API acts on: every API's backend, the fault table and the stats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sandbox.calendar.backend import CalendarBackend
from sandbox.core.faults import FaultTable
from sandbox.core.stats import Stats
from sandbox.iam.backend import IamBackend
from sandbox.oauth.backend import OAuthBackend
from sandbox.secretmanager.backend import SecretManagerBackend


class Resettable(Protocol):
    def reset(self) -> None: ...


@dataclass
class ControlBackend:
    calendar: CalendarBackend
    oauth: OAuthBackend
    secretmanager: SecretManagerBackend
    faults: FaultTable
    stats: Stats
    iam: IamBackend
    # Backends of APIs the control endpoints have no knobs for here (MercadoPago has its
    # own under /_sandbox/mercadopago/): only reset with the rest.
    others: list[Resettable] = field(default_factory=list)

    def reset(self) -> None:
        """Forget every API's state, the faults and the stats (the signing key stays)."""
        self.calendar.reset()
        self.oauth.reset()
        self.secretmanager.reset()
        self.iam.reset()
        for backend in self.others:
            backend.reset()
        self.faults.clear()
        self.stats.clear()

    def close(self) -> None:
        self.calendar.close()
