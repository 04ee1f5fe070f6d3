"""Cloud Function ``calendar_webhook``: Google Calendar push notifications (HTTP).

Google POSTs a bodiless notification whenever the school calendar changes. Only
notifications for a channel classcal created, carrying that channel's secret token,
are accepted (403 otherwise); a change runs an incremental sync that updates the
affected bookings. Google retries 5xx, so a transient failure answers 503 and the
notification comes back; everything else answers 2xx quickly, never a stack trace.
"""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.core.errors import ConfigError, PermanentError, TransientError
from shared.core.logs import get_logger

log = get_logger("calendar_webhook")


def _answer(status: int) -> tuple[str, int, dict[str, str]]:
    return ("", status, {"Content-Type": "text/plain", "Cache-Control": "no-store"})


@functions_framework.http
def calendar_webhook(request: Any) -> tuple[str, int, dict[str, str]]:
    if request.method != "POST":
        return ("", 405, {"Allow": "POST"})
    from shared.domain import sync

    context = {
        "channel_id": (request.headers.get("X-Goog-Channel-ID") or "")[:64],
        "resource_state": (request.headers.get("X-Goog-Resource-State") or "")[:32],
        "message_number": (request.headers.get("X-Goog-Message-Number") or "")[:32],
    }
    try:
        result = sync.handle_notification(request.headers)
    except (TransientError, ConfigError) as error:
        # Google redelivers on 503; the sync left the calendar marked dirty.
        log.warning(
            f"sync failed, Google will redeliver: {error.message}",
            extra={**context, "outcome": "retry", "reason": error.code},
        )
        return _answer(503)
    except PermanentError as error:
        # Redelivery cannot fix this: acknowledge, and make it visible.
        log.error(
            f"sync failed permanently: {error.message}",
            extra={**context, "outcome": "failed", "reason": error.code},
        )
        return _answer(200)
    except Exception:
        log.exception("unexpected error in the calendar webhook", extra=context)
        return _answer(500)
    fields = result.sync.log_fields() if result.sync else {}
    if result.status == sync.REJECTED:
        log.warning(
            "notification refused",
            extra={**context, "outcome": "rejected", "reason": result.reason},
        )
        return _answer(403)
    log.info(
        f"notification {result.status}",
        extra={**context, "outcome": result.status, "reason": result.reason or None, **fields},
    )
    return _answer(200)
