"""The HTTP face of Google Calendar push notifications (the public ``calendar_webhook``).

Google POSTs a bodiless notification whenever the watched calendar changes. Only
notifications for a channel classcal created, carrying that channel's secret token,
are accepted (403 otherwise); a change is published to ``calendar-changes`` for the
private ``calendar_sync`` (``shared.domain.notifications``): this function holds no
Google credential. Google retries 5xx, so a failure to publish answers 503 and the
notification comes back; a bug answers 500, never a stack trace.
"""

from __future__ import annotations

from typing import Any

from shared.core.logs import get_logger
from shared.domain import notifications
from shared.web.serving import Answers

log = get_logger(__name__)


def _answer(status: int) -> tuple[str, int, dict[str, str]]:
    return ("", status, {"Content-Type": "text/plain", "Cache-Control": "no-store"})


def context(request: Any) -> dict[str, str]:
    """The notification's headers worth a log field (never the channel token)."""
    return {
        "channel_id": (request.headers.get("X-Goog-Channel-ID") or "")[:64],
        "resource_state": (request.headers.get("X-Goog-Resource-State") or "")[:32],
        "message_number": (request.headers.get("X-Goog-Message-Number") or "")[:32],
    }


def handle(request: Any) -> tuple[str, int, dict[str, str]]:
    if request.method != "POST":
        return ("", 405, {"Allow": "POST"})
    result = notifications.handle_notification(request.headers)
    if result.status == notifications.REJECTED:
        log.warning(
            "notification refused",
            extra={**context(request), "outcome": "rejected", "reason": result.reason},
        )
        return _answer(403)
    log.info(
        f"notification {result.status}",
        extra={
            **context(request),
            "outcome": result.status,
            "reason": result.reason or None,
            "change_message_id": result.message_id,
        },
    )
    return _answer(200)


def _status(status: int) -> Any:
    return lambda _error=None: _answer(status)


# Nothing was published: Google sends the notification again after a 5xx.
ANSWERS = Answers(
    unavailable=_status(503),
    misconfigured=_status(503),
    failed=_status(200),  # redelivery cannot fix it: acknowledge; the ERROR line shows it
    internal=lambda: _answer(500),
)
