"""The names the local stack, the tests and the benchmarks share: one place for each.

The OAuth client here is registered with the local Google sandbox only; it is not a
client of any real Google account, and its "secret" protects nothing.
"""

from __future__ import annotations

PROJECT = "classcal-local"
CLIENT_ID = "classcal-local.apps.googleusercontent.com"
CLIENT_SECRET = "classcal-local-sandbox-client"  # noqa: S105 (the sandbox's client only)
ADMIN_EMAIL = "admin@school.test"
# The sandbox keeps the admin's "primary" calendar under its owner's address.
ADMIN_CALENDAR = ADMIN_EMAIL
CALENDAR_ID = "primary"
# Where oauth_callback is said to live when no server of it is running (in-process tests).
REDIRECT_URI = "http://127.0.0.1:8080/callback"

# The Pub/Sub topics, and which event function each feeds (as infra/ wires them).
PAYMENTS = "payments"
MAINTENANCE = "calendar-maintenance"
GUEST_CHANGES = "guest-changes"
BOOKING_CHANGES = "booking-changes"
CALENDAR_CHANGES = "calendar-changes"
EVENT_TOPICS = {
    "create_event": PAYMENTS,
    "booking_changes": BOOKING_CHANGES,
    "calendar_maintenance": MAINTENANCE,
    "guest_invitations": GUEST_CHANGES,
    "calendar_sync": CALENDAR_CHANGES,
}
