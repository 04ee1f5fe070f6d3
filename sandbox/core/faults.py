"""Injected faults: errors and delays the control API arms and the server fires."""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass
from typing import Any

from sandbox.core.stats import Stats


@dataclass
class Fault:
    method: str | None  # an HTTP method or a discovery method id; None matches any
    path: str  # a regex searched in the request path
    status: int
    reason: str | None
    message: str | None
    remaining: int | None  # None: unlimited
    probability: float | None
    commit: bool
    delay: float | None
    # An ErrorInfo reason for the body's `details` (None: as the API answers the reason).
    details: str | None = None
    fired: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "remaining": self.remaining,
            "probability": self.probability,
            "commit": self.commit,
            "delay": self.delay,
            "details": self.details,
            "fired": self.fired,
        }


class FaultTable:
    """The armed faults, in the order they were added."""

    def __init__(self, stats: Stats) -> None:
        self._lock = threading.Lock()
        self._stats = stats
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.describe() for fault in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, http_method: str, path: str, method_id: str) -> Fault | None:
        """The first armed fault matching the request, counted as fired; None if none."""
        with self._lock:
            for fault in self._faults:
                # `method` is an HTTP method (any case) or a discovery method id.
                if fault.remaining == 0:
                    continue
                wanted = fault.method
                if wanted and wanted.upper() != http_method and wanted != method_id:
                    continue
                if not re.search(fault.path, path):
                    continue
                if fault.probability is not None and random.random() >= fault.probability:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                fault.fired += 1
                self._stats.fault_fired()
                return fault
        return None
