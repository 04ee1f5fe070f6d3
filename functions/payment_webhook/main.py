"""Cloud Function ``payment_webhook``: MercadoPago's Webhooks notifications (public HTTP).

Only a notification signed with the application's webhook secret is accepted; the
payment is then read from MercadoPago's API, never taken from the notification, and
published to Pub/Sub topic ``payments`` for create_event (see
``shared.web.payment_webhook`` and docs/contracts/payment_webhook.md).
"""

from __future__ import annotations

import flask
import functions_framework

from shared.web import payment_webhook as webhook
from shared.web import serving


@functions_framework.http
def payment_webhook(request: flask.Request) -> flask.Response:
    return serving.run(
        request,
        webhook.handle,
        name="payment_webhook",
        answers=webhook.ANSWERS,
        context=webhook.context(request),
    )
