"""MercadoPago's routes table, and its control side's (not faultable, not counted)."""

from __future__ import annotations

from sandbox.core.routing import Api, RouteRow, bind
from sandbox.mercadopago import handlers
from sandbox.mercadopago.backend import MercadoPagoBackend
from sandbox.mercadopago.errors import fault_error

_PAYMENT = r"/v1/payments/(?P<payment>[^/]+)"

TABLE: tuple[RouteRow, ...] = (
    ("GET", _PAYMENT, "mercadopago.payments.get", handlers.get_payment),
    ("POST", f"{_PAYMENT}/refunds", "mercadopago.refunds.create", handlers.create_refund),
    (
        "GET",
        r"/merchant_orders/(?P<order>[^/]+)",
        "mercadopago.merchant_orders.get",
        handlers.get_order,
    ),
)

C = "/_sandbox/mercadopago"
CONTROL: tuple[RouteRow, ...] = (
    ("POST", f"{C}/config", "sandbox.mercadopago.config", handlers.configure),
    ("POST", f"{C}/payments", "sandbox.mercadopago.payments.create", handlers.create_payment),
    (
        "GET",
        f"{C}/payments/(?P<payment>[^/]+)",
        "sandbox.mercadopago.payments.get",
        handlers.read_payment,
    ),
    (
        "POST",
        f"{C}/payments/(?P<payment>[^/]+)/status",
        "sandbox.mercadopago.payments.status",
        handlers.set_status,
    ),
    ("POST", f"{C}/notifications", "sandbox.mercadopago.notify", handlers.notify),
    ("GET", f"{C}/notifications", "sandbox.mercadopago.deliveries", handlers.deliveries),
)


def apis(backend: MercadoPagoBackend) -> list[Api]:
    return [
        Api("mercadopago", ("/v1/payments", "/merchant_orders"), bind(TABLE, backend), fault_error),
        Api(
            "mercadopago-control",
            (f"{C}/",),
            bind(CONTROL, backend),
            fault_error,
            faultable=False,
        ),
    ]
