"""MercadoPago's payments API, as far as classcal uses it, and its "simulate" tools.

`GET /v1/payments/{id}`, `GET /merchant_orders/{id}`, `POST /v1/payments/{id}/refunds`
(honouring `X-Idempotency-Key`), Bearer-token checks, MercadoPago's error body
(`{"message", "error", "status", "cause"}`); and under `/_sandbox/mercadopago/` the
control side: accept an access token and a webhook secret, create a payment, change its
status, build and deliver a signed Webhooks notification.
`routes` -> `handlers` -> `backend` -> `render`; `models`, `errors`, `signing`; `client`
is the Python client of the control side. Imports only `sandbox.core`.
"""
