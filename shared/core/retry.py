"""One retry vocabulary: named backoff policies, and one sleep that tests can replace.

Every wait classcal does between two attempts goes through ``sleep`` here, so a test can
make retries instant (``retry.sleeper(fake)``) without patching ``time.sleep`` for the
whole process. The policies are plain numbers; ``api_core_retry`` turns one into the
``google.api_core.retry.Retry`` that Firestore and Secret Manager calls take, and
googleapiclient's own ``num_retries`` (``GOOGLE_API_RETRIES``) covers Calendar calls.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

_sleep: Callable[[float], None] = time.sleep
_lock = threading.Lock()


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``initial`` s, times ``multiplier`` each attempt, capped at
    ``maximum``; with ``jitter``, each delay is drawn from [delay/2, delay]."""

    initial: float
    maximum: float
    multiplier: float = 2.0
    jitter: bool = True

    def delay(self, attempt: int) -> float:
        """The wait before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
        delay = min(self.maximum, self.initial * self.multiplier**attempt)
        if self.jitter:
            delay = random.uniform(delay / 2, delay)  # noqa: S311 (jitter, not a secret)
        return delay

    def delays(self, attempts: int) -> Iterator[float]:
        return (self.delay(n) for n in range(attempts))


# Reads outside a transaction: give up after a few seconds, the caller is redelivered.
FIRESTORE_READ = Backoff(initial=0.2, maximum=1.0)
# Secret Manager: the library default turns an outage into 60 s of waiting.
SECRET_MANAGER = Backoff(initial=0.2, maximum=2.0)
# Contention on one document (many notifications taking one lease).
CONTENTION = Backoff(initial=0.05, maximum=0.4)


def sleep(seconds: float) -> None:
    """Wait between two attempts (replaceable in tests)."""
    _sleep(seconds)


@contextlib.contextmanager
def sleeper(replacement: Callable[[float], None]) -> Iterator[None]:
    """Use ``replacement`` for every retry wait inside the block."""
    global _sleep
    with _lock:
        previous, _sleep = _sleep, replacement
    try:
        yield
    finally:
        with _lock:
            _sleep = previous


def api_core_retry(
    policy: Backoff, retry_on: Iterable[type[BaseException]], deadline: float
) -> Any:
    """The policy as a google.api_core Retry for the given exception types."""
    from google.api_core import retry

    return retry.Retry(
        predicate=retry.if_exception_type(*retry_on),
        initial=policy.initial,
        maximum=policy.maximum,
        multiplier=policy.multiplier,
        timeout=deadline,
    )
