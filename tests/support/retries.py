"""The Google API client's retries, real but quick, for the tests that exercise them.

classcal's Calendar calls retry through googleapiclient's ``execute(num_retries=...)``,
which sleeps ``random() * 2**n`` seconds before its n-th retry: up to 14 s for three,
and 3.5 s on average for a call Google keeps failing. The suite runs with
``GOOGLE_API_RETRIES=0``; a test of the retries asks for them here. Every retry and
every request stays real; only the random factor of the backoff is made small, so
three retries sleep 0.07 s in all.
"""

from __future__ import annotations

import googleapiclient.http
import pytest

from shared.core.config import reset_config

BACKOFF_FACTOR = 0.01  # instead of random() in [0, 1)


class _SmallRandom:
    """Stands in for the ``random`` module inside ``googleapiclient.http`` only."""

    @staticmethod
    def random() -> float:
        return BACKOFF_FACTOR


def quick(env: pytest.MonkeyPatch, count: int) -> int:
    """``count`` Calendar retries for the rest of the test, each backoff short."""
    env.setenv("GOOGLE_API_RETRIES", str(count))
    env.setattr(googleapiclient.http, "random", _SmallRandom)
    reset_config()
    return count
