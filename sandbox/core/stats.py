"""What the sandbox counts, for `GET /_sandbox/stats`. Safe to use from any thread."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    """Counters by group (requests, send_updates, notifications), schema violations and
    the number of faults fired. Every method takes the stats' own lock."""

    GROUPS = ("requests", "send_updates", "notifications")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._counters: dict[str, Counter[str]] = {group: Counter() for group in self.GROUPS}
            self._violations: list[dict[str, str]] = []
            self._faults_fired = 0

    def count(self, group: str, key: str) -> None:
        with self._lock:
            self._counters[group][key] += 1

    def fault_fired(self) -> None:
        with self._lock:
            self._faults_fired += 1

    def schema_violation(self, method_id: str, path: str, problem: str) -> None:
        with self._lock:
            self._violations.append({"method": method_id, "path": path, "problem": problem})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self._counters["requests"]),
                "schema_violations": list(self._violations),
                "faults_fired": self._faults_fired,
                "send_updates": dict(self._counters["send_updates"]),
                "notifications": dict(self._counters["notifications"]),
            }
