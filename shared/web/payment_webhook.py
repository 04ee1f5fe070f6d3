"""The HTTP face of MercadoPago's Webhooks notifications (docs/contracts/payment_webhook.md).

``POST /?data.id=<id>&type=payment`` with ``x-signature`` and ``x-request-id``. A
notification whose signature is missing, malformed, wrong or stale gets 401 and changes
nothing; so does one whose body names another resource than the signed ``data.id``. A
verified one is answered 200 once the payment is published (or found to be nothing of
classcal's). MercadoPago retries anything else, so a transient failure (MercadoPago's API
or Pub/Sub unavailable) and a misconfiguration answer 503; a permanent failure is
acknowledged (200) and logged at ERROR; a bug answers 500, never a stack trace.
"""

from __future__ import annotations

from typing import Any

import flask

from shared.core.config import get_config
from shared.core.errors import ClasscalError
from shared.core.logs import get_logger
from shared.domain import payment_notifications
from shared.mercadopago import signatures
from shared.web.http import json_error, json_response, method_not_allowed
from shared.web.serving import Answers

log = get_logger(__name__)

MAX_BODY_BYTES = 16 * 1024
MAX_ID = 64


def context(request: flask.Request) -> dict[str, Any]:
    """The notification's fields worth a log field (never the signature)."""
    return {
        "notification_type": (request.args.get("type") or "")[:32] or None,
        "payment_id": (request.args.get("data.id") or "")[:MAX_ID] or None,
        "request_id": (request.headers.get("x-request-id") or "")[:64] or None,
    }


def _refused(reason: str, request: flask.Request) -> flask.Response:
    log.warning(
        "notification refused: not provably MercadoPago's",
        extra={**context(request), "outcome": "rejected", "reason": reason},
    )
    return json_error(401, "the notification's signature is not valid", reason=reason)


def _body_id(body: Any) -> str | None:
    data = body.get("data") if isinstance(body, dict) else None
    value = data.get("id") if isinstance(data, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else None


def handle(request: flask.Request) -> flask.Response:
    if request.method != "POST":
        return method_not_allowed(["POST"])
    config = get_config()
    secret = config.require("MERCADOPAGO_WEBHOOK_SECRET")
    config.require("MERCADOPAGO_ACCESS_TOKEN")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return json_error(413, "the notification is too large", reason="too_large")
    data_id = request.args.get("data.id") or None
    try:
        signatures.verify(
            request.headers.get("x-signature"),
            request_id=request.headers.get("x-request-id"),
            data_id=data_id,
            secret=secret,
            tolerance_seconds=config.mercadopago_signature_tolerance_seconds,
        )
    except signatures.InvalidSignature as error:
        return _refused(error.code, request)
    body = request.get_json(silent=True)
    body_id = _body_id(body)
    if body_id is not None and body_id != data_id:
        # The signature covers the query's data.id only: a body naming another one was
        # changed after signing.
        return _refused("signature_body_mismatch", request)
    kind = request.args.get("type") or (body.get("type") if isinstance(body, dict) else None)
    if kind == "payment" and data_id is None:
        return _refused("signature_without_id", request)
    if data_id is not None and (len(data_id) > MAX_ID or not data_id.isprintable()):
        return json_error(400, "data.id is not a MercadoPago id", reason="invalid_parameter")
    result = payment_notifications.handle(kind if isinstance(kind, str) else None, data_id)
    log.info(
        f"notification {result['outcome']}",
        extra={**context(request), **result},
    )
    return json_response({"outcome": result["outcome"]})


def _unavailable(error: ClasscalError) -> flask.Response:
    return json_error(
        503, "classcal cannot take this notification now; deliver it again", reason=error.code
    )


ANSWERS = Answers(
    unavailable=_unavailable,
    misconfigured=_unavailable,
    # Redelivery cannot fix it: acknowledge; the ERROR line shows it.
    failed=lambda error: json_response({"outcome": "failed", "reason": error.code}),
    internal=lambda: json_error(500, "internal error", reason="internal"),
)
