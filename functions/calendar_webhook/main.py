"""Cloud Function ``calendar_webhook``: Google Calendar push notifications (HTTP, public).

Only notifications for a channel classcal created, with that channel's secret token,
are accepted; a change is published to topic ``calendar-changes``, and the private
``calendar_sync`` lists it with the school's token: this function holds no Google
credential (see ``shared.web.calendar_push`` and docs/contracts/calendar_webhook.md).
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
