"""MercadoPago's payments API over ``requests``: read a payment, read a merchant order,
refund a payment. MercadoPago's answers become classcal's errors here, in one place:

- 401/403: the access token is wrong or lacks a permission: ``ConfigError`` naming
  ``MERCADOPAGO_ACCESS_TOKEN`` (fixed by a redeploy, so the caller keeps the work);
- 404: ``MercadoPagoNotFound`` (permanent);
- 429, 5xx, a timeout or no answer: ``MercadoPagoUnavailable`` (transient; MercadoPago
  and Pub/Sub both deliver again);
- any other 4xx: ``MercadoPagoRefused`` (permanent), with MercadoPago's own message.

No retries here: every caller is itself retried (the webhook by MercadoPago, create_event
by Pub/Sub), and each call is bounded by ``MERCADOPAGO_HTTP_TIMEOUT_SECONDS`` so that an
answer never waits long. Why not MercadoPago's SDK: docs/contracts/payment_webhook.md.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests

from shared.core.config import get_config
from shared.core.errors import ConfigError, PermanentError, TransientError


class MercadoPagoUnavailable(TransientError):
    """MercadoPago answered 429 or 5xx, or not in time."""

    code = "mercadopago_unavailable"


class MercadoPagoNotFound(PermanentError):
    code = "mercadopago_not_found"


class MercadoPagoRefused(PermanentError):
    """MercadoPago refused the request (4xx); ``status`` and MercadoPago's message kept."""

    code = "mercadopago_refused"

    def __init__(self, message: str, *, status: int, error: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error


_local = threading.local()


def _session() -> requests.Session:
    # A Session is not promised to be thread-safe; functions-framework serves on threads.
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False  # no proxy or .netrc credentials for a bearer-token API
        _local.session = session
    return session


def _mp_message(response: requests.Response) -> tuple[str, str | None]:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}", None
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}", None
    message = body.get("message")
    error = body.get("error")
    text = message if isinstance(message, str) and message else f"HTTP {response.status_code}"
    return text[:300], error if isinstance(error, str) else None


def _call(
    method: str, path: str, *, what: str, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    config = get_config()
    token = config.require("MERCADOPAGO_ACCESS_TOKEN")
    url = f"{config.mercadopago_api_url}{path}"
    try:
        response = _session().request(
            method,
            url,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                **dict(headers or {}),
            },
            json={} if method == "POST" else None,
            timeout=config.mercadopago_http_timeout_seconds,
            allow_redirects=False,
        )
    except requests.Timeout:
        raise MercadoPagoUnavailable(f"MercadoPago did not answer in time ({what})") from None
    except requests.RequestException as error:
        raise MercadoPagoUnavailable(
            f"MercadoPago could not be reached ({what}): {type(error).__name__}"
        ) from None
    status = response.status_code
    if status in (401, 403):
        raise ConfigError(
            f"MercadoPago refused MERCADOPAGO_ACCESS_TOKEN (HTTP {status}) to {what}: set the "
            "application's production access token, with permission to read and refund payments"
        )
    if status == 429 or status >= 500:
        raise MercadoPagoUnavailable(f"MercadoPago answered HTTP {status} ({what})")
    message, error = _mp_message(response)
    if status == 404:
        raise MercadoPagoNotFound(f"MercadoPago has no such resource ({what}): {message}")
    if status >= 300:
        raise MercadoPagoRefused(
            f"MercadoPago refused to {what} (HTTP {status}): {message}", status=status, error=error
        )
    try:
        body = response.json()
    except ValueError:
        raise MercadoPagoUnavailable(f"MercadoPago's answer is not JSON ({what})") from None
    if not isinstance(body, dict):
        raise MercadoPagoUnavailable(f"MercadoPago's answer is not an object ({what})")
    return body


def _segment(value: str | int) -> str:
    return quote(str(value), safe="")


def get_payment(payment_id: str | int) -> dict[str, Any]:
    """``GET /v1/payments/{id}``: the payment as MercadoPago knows it now."""
    return _call("GET", f"/v1/payments/{_segment(payment_id)}", what=f"read payment {payment_id}")


def get_merchant_order(order_id: str | int) -> dict[str, Any]:
    """``GET /merchant_orders/{id}``: carries the order's ``preference_id``."""
    return _call(
        "GET", f"/merchant_orders/{_segment(order_id)}", what=f"read merchant order {order_id}"
    )


def refund_payment(payment_id: str | int, idempotency_key: str) -> dict[str, Any]:
    """``POST /v1/payments/{id}/refunds`` with an empty body: a full refund. The same
    ``idempotency_key`` again gets the first refund back, never a second one."""
    return _call(
        "POST",
        f"/v1/payments/{_segment(payment_id)}/refunds",
        what=f"refund payment {payment_id}",
        headers={"X-Idempotency-Key": idempotency_key},
    )
