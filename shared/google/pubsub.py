"""Publishing to Pub/Sub with the client library (``PUBSUB_EMULATOR_HOST`` points it at
the emulator). One publisher per instance; a publish waits at most a few seconds, and
a missing topic or a missing permission is a ``ConfigError``; any other failure to
publish is ``PubSubUnavailable`` (transient: the caller's sender retries).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from shared.core.config import get_config
from shared.core.errors import ConfigError, TransientError

if TYPE_CHECKING:
    from google.cloud import pubsub_v1

PUBLISH_TIMEOUT_SECONDS = 5.0


class PubSubUnavailable(TransientError):
    code = "pubsub_unavailable"


_lock = threading.Lock()
# By emulator address: tests point the same process at a fresh emulator.
_publishers: dict[str | None, pubsub_v1.PublisherClient] = {}


def _publisher() -> pubsub_v1.PublisherClient:
    key = os.environ.get("PUBSUB_EMULATOR_HOST")
    publisher = _publishers.get(key)
    if publisher is None:
        with _lock:
            publisher = _publishers.get(key)
            if publisher is None:
                from google.cloud import pubsub_v1

                # One message per call: send it at once rather than wait to batch.
                publisher = pubsub_v1.PublisherClient(
                    batch_settings=pubsub_v1.types.BatchSettings(max_messages=1)
                )
                _publishers[key] = publisher
    return publisher


def publish(topic: str, data: bytes, **attributes: str) -> str:
    """Publish one message to ``topic`` of this project; its message id."""
    from google.api_core import exceptions, retry
    from google.auth import exceptions as auth_exceptions

    try:
        publisher = _publisher()
    except auth_exceptions.DefaultCredentialsError:
        # Only off Google Cloud, with no emulator configured: say what to set.
        raise ConfigError(
            "no credentials to publish to Pub/Sub: run on Google Cloud, or set "
            "PUBSUB_EMULATOR_HOST to the emulator"
        ) from None
    path = publisher.topic_path(get_config().project, topic)
    deadline = PUBLISH_TIMEOUT_SECONDS
    try:
        future: Any = publisher.publish(
            path,
            data,
            retry=retry.Retry(initial=0.1, maximum=1.0, timeout=deadline),
            timeout=deadline,
            **attributes,
        )
        return str(future.result(timeout=deadline + 1))
    except exceptions.NotFound:
        raise ConfigError(
            f"the Pub/Sub topic {topic!r} (PAYMENTS_TOPIC) does not exist in this project"
        ) from None
    except exceptions.PermissionDenied:
        raise ConfigError(
            f"this function may not publish to the Pub/Sub topic {topic!r}: it needs "
            "roles/pubsub.publisher on it"
        ) from None
    except Exception as error:  # every other failure to publish means: try again
        raise PubSubUnavailable(
            f"could not publish to the Pub/Sub topic {topic!r}: {type(error).__name__}"
        ) from None
