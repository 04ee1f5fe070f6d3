"""A bare HTTP function returning a constant: the baseline the benchmarks divide by."""

from __future__ import annotations


def bare(request: object) -> tuple[str, int, dict[str, str]]:
    return "[]", 200, {"Content-Type": "application/json"}
