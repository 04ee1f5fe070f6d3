"""The Firestore handle every store shares: the client, its errors, read retries, ids.

Only modules in ``shared.stores`` import this one, and only they call Firestore. The
client itself is built by ``shared.google.clients`` (the one place that builds Google
clients); here it is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shared.core import retry
from shared.core.errors import StoreUnavailable
from shared.google import clients

if TYPE_CHECKING:
    from google.cloud import firestore

# The seed's collection of bookings: named here so that every store (shared.stores.slots
# too, which shared.stores.bookings imports) reads the one name.
BOOKINGS = "virtualClasses"


def firestore_client() -> firestore.Client:
    """The instance's one Firestore client."""
    return clients.firestore_client()


@contextlib.contextmanager
def firestore_errors(what: str) -> Iterator[None]:
    """Turn Firestore's transient failures into StoreUnavailable, which callers retry."""
    from google.api_core import exceptions

    try:
        yield
    except (
        exceptions.ServiceUnavailable,
        exceptions.DeadlineExceeded,
        exceptions.InternalServerError,
        exceptions.Aborted,
        exceptions.TooManyRequests,
        exceptions.Unknown,
        exceptions.RetryError,
    ) as error:
        raise StoreUnavailable(f"Firestore could not {what}: {type(error).__name__}") from None
    except ValueError as error:
        # firestore.transactional gives up on contention with a ValueError raised from the
        # last Aborted commit ("Failed to commit transaction in 5 attempts"): transient.
        if not isinstance(error.__cause__, exceptions.GoogleAPICallError):
            raise
        raise StoreUnavailable(
            f"Firestore could not {what}: contention ({type(error.__cause__).__name__})"
        ) from None


def firestore_read_retry(deadline_seconds: float) -> Any:
    """Retries for a read outside a transaction that give up after ``deadline_seconds``
    instead of the library's minute: Pub/Sub and Google redeliver, and waiting there
    costs no function time."""
    from google.api_core import exceptions

    return retry.api_core_retry(
        retry.FIRESTORE_READ,
        (
            exceptions.ServiceUnavailable,
            exceptions.InternalServerError,
            exceptions.DeadlineExceeded,
        ),
        deadline_seconds,
    )
