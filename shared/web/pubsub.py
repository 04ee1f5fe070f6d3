"""How event functions treat a Pub/Sub message: one place decides ack or retry.

A handler returns normally to acknowledge. ``PermanentError`` (bad input, a booking that
can never be scheduled) is logged and acknowledged, because retries will not fix it.
``TransientError`` and ``ConfigError`` are logged and re-raised as ``RetryLater`` so
functions-framework answers 500 and Pub/Sub redelivers. Anything unexpected is a bug:
logged with its traceback and retried, so the message is kept (and dead-lettered after
the subscription's bounded attempts) rather than lost.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.core.errors import (
    ClasscalError,
    ConfigError,
    InvalidMessage,
    PermanentError,
    TransientError,
)
from shared.core.logs import get_logger

log = get_logger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024  # a payment message is a few hundred bytes


class RetryLater(Exception):
    """Raised to the framework so that Pub/Sub redelivers; its text is safe to log."""


class _QuietRetries(logging.Filter):
    """Drops the framework's own ``Exception on / [POST]`` record for a RetryLater.

    functions-framework answers 500 (what makes Pub/Sub redeliver) only when the function
    raises, and Flask then logs the exception with its traceback at ERROR: in Cloud
    Logging every routine retry would land in Error Reporting as a crash. classcal has
    already said why in one line; a real bug is logged with its traceback by ``run``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, RetryLater)


_quiet = _QuietRetries()


def _quiet_framework_logger(name: str) -> None:
    loggers = [logging.getLogger(name)]
    with contextlib.suppress(ImportError, RuntimeError):
        import flask

        loggers.append(flask.current_app.logger)  # the app functions-framework made
    for logger in loggers:
        if _quiet not in logger.filters:
            logger.addFilter(_quiet)


@dataclass(frozen=True)
class PubSubMessage:
    data: bytes
    message_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    publish_time: str | None = None

    def json_object(self) -> dict[str, Any]:
        """The data as a JSON object, or InvalidMessage saying why it is not one."""
        if len(self.data) > MAX_MESSAGE_BYTES:
            size = len(self.data)
            raise InvalidMessage(f"message data is {size} bytes, over {MAX_MESSAGE_BYTES}")
        try:
            text = self.data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidMessage("message data is not UTF-8") from None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidMessage(f"message data is not JSON ({error.msg})") from None
        # JSON that Python will not read (no payment looks like it) is malformed too, not
        # a bug to retry until it is dead-lettered.
        except ValueError:  # an integer of more than 4300 digits
            raise InvalidMessage("message data holds a number too long to read") from None
        except RecursionError:
            raise InvalidMessage("message data is nested too deeply") from None
        if not isinstance(value, dict):
            raise InvalidMessage(f"message data is JSON {type(value).__name__}, not an object")
        return value


def pubsub_message(cloud_event: Any) -> PubSubMessage:
    """The Pub/Sub message inside a messagePublished CloudEvent."""
    body = cloud_event.data
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        raise InvalidMessage("the CloudEvent carries no Pub/Sub message")
    raw = message.get("data", "")
    if not isinstance(raw, str):
        raise InvalidMessage("message data is not a base64 string")
    if len(raw) > MAX_MESSAGE_BYTES * 4 // 3 + 4:
        raise InvalidMessage(f"message data is over {MAX_MESSAGE_BYTES} bytes")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidMessage("message data is not valid base64") from None
    attributes = message.get("attributes")
    return PubSubMessage(
        data=data,
        message_id=str(message.get("messageId") or message.get("message_id") or ""),
        attributes=attributes if isinstance(attributes, dict) else {},
        publish_time=message.get("publishTime") or message.get("publish_time"),
    )


def run(
    cloud_event: Any, handler: Callable[[PubSubMessage], dict[str, Any] | None], *, name: str
) -> None:
    """Run ``handler`` on the event's message with classcal's ack/retry policy.

    The handler may return a dict of fields for the closing log line.
    """
    event_id = getattr(cloud_event, "get", lambda _k: None)("id")
    context: dict[str, Any] = {"function": name, "event_id": event_id}
    _quiet_framework_logger(name)
    try:
        message = pubsub_message(cloud_event)
        context["message_id"] = message.message_id
        outcome = handler(message) or {}
    except PermanentError as error:
        # Retries will not fix this: acknowledge, and say why (once: at INFO when the
        # domain already said it at the severity it deserves).
        (log.info if error.logged else log.warning)(
            f"acknowledged without effect: {error.message}",
            extra={**context, "outcome": "rejected", "reason": error.code},
        )
        return
    except (TransientError, ConfigError) as error:
        severity = log.error if isinstance(error, ConfigError) else log.warning
        if error.logged:
            severity = log.info  # the domain logged why, once, at its severity
        severity(
            f"will retry: {error.message}",
            extra={**context, "outcome": "retry", "reason": error.code},
        )
        raise RetryLater(f"{error.code}: {error.message}") from None
    except ClasscalError as error:
        log.error(
            f"will retry: {error.message}",
            extra={**context, "outcome": "retry", "reason": error.code},
        )
        raise RetryLater(f"{error.code}: {error.message}") from None
    except Exception:
        log.exception("unexpected error; will retry", extra={**context, "outcome": "retry"})
        raise RetryLater("unexpected error; see the log line before this one") from None
    log.info("done", extra={**context, "outcome": "ok", **outcome})
