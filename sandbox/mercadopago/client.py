"""A small client of the sandbox's MercadoPago control endpoints (/_sandbox/mercadopago/),
for tests, benchmarks and the local demo. Standard library only."""

from __future__ import annotations

from typing import Any

from sandbox.core.control_calls import ControlCallError, call


class MercadoPagoControlError(ControlCallError):
    """A control call failed; `status` is the HTTP status (0: no answer)."""


class MercadoPagoControl:
    def __init__(self, url: str, timeout: float = 40.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    @property
    def api_url(self) -> str:
        """What MERCADOPAGO_API_URL is set to, to use this sandbox's MercadoPago."""
        return self.url

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.url}/_sandbox/mercadopago/{path}"
        return call(url, method, body, self.timeout, MercadoPagoControlError)

    def configure(
        self,
        access_token: str | None = None,
        webhook_secret: str | None = None,
        notification_url: str | None = None,
    ) -> dict[str, Any]:
        """Accept `access_token` as the application's; sign with `webhook_secret`; with
        `notification_url`, notify it of every change as MercadoPago does ('' stops it)."""
        body = {
            "access_token": access_token,
            "webhook_secret": webhook_secret,
            "notification_url": notification_url,
        }
        return self._call("POST", "config", {k: v for k, v in body.items() if v is not None})

    def create_payment(self, **fields: Any) -> dict[str, Any]:
        """A payment (amount, currency, status, external_reference, preference_id,
        days_ago, metadata) and its merchant order; returns the payment as the API shows it."""
        return self._call("POST", "payments", fields)

    def payment(self, payment_id: int | str) -> dict[str, Any]:
        return self._call("GET", f"payments/{payment_id}")

    def set_status(self, payment_id: int | str, status: str) -> dict[str, Any]:
        return self._call("POST", f"payments/{payment_id}/status", {"status": status})

    def notify(self, payment_id: int | str, url: str, **options: Any) -> dict[str, Any]:
        """Build the signed notification and deliver it (`deliver=False`: only build it).
        Options: action, type, ts, secret."""
        return self._call(
            "POST", "notifications", {"payment_id": str(payment_id), "url": url, **options}
        )

    def deliveries(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "notifications")["deliveries"])
