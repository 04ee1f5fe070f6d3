"""Cloud Function ``calendar_webhook``: Google Calendar push notifications (HTTP).

Only notifications for a channel classcal created, with that channel's secret token,
are accepted; a change runs an incremental sync (see ``shared.web.calendar_push`` and
docs/contracts/calendar_webhook.md).
"""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.web import calendar_push, serving


@functions_framework.http
def calendar_webhook(request: Any) -> Any:
    return serving.run(
        request,
        calendar_push.handle,
        name="calendar_webhook",
        answers=calendar_push.ANSWERS,
        context=calendar_push.context(request),
    )
