"""What the control API acts on: every API's backend, the fault table and the stats."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.calendar.backend import CalendarBackend
from sandbox.core.faults import FaultTable
from sandbox.core.stats import Stats
from sandbox.iam.backend import IamBackend
from sandbox.oauth.backend import OAuthBackend
from sandbox.secretmanager.backend import SecretManagerBackend


@dataclass
class ControlBackend:
    calendar: CalendarBackend
    oauth: OAuthBackend
    secretmanager: SecretManagerBackend
    faults: FaultTable
    stats: Stats
    iam: IamBackend

    def reset(self) -> None:
        """Forget every API's state, the faults and the stats (the signing key stays)."""
        self.calendar.reset()
        self.oauth.reset()
        self.secretmanager.reset()
        self.iam.reset()
        self.faults.clear()
        self.stats.clear()

    def close(self) -> None:
        self.calendar.close()
