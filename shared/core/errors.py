"""One error tree. Whether a Pub/Sub message is retried follows from the type alone.

``PermanentError``: retrying the same input cannot help, so event functions log and
acknowledge. ``TransientError``: the same input may succeed later, so event functions
raise and Pub/Sub redelivers. ``ConfigError`` is neither: a misconfigured deployment is
fixed by a redeploy, and until then messages must be kept, so it is retried too.

Every error carries a short machine ``code`` (stored on bookings and logged) and a
``message`` that is safe to show: never a token, a code or an access code.
"""

from __future__ import annotations


class ClasscalError(Exception):
    """Base of every error classcal raises on purpose."""

    code = "error"
    # Set once a line has said why (at the severity the error deserves): the ack/retry
    # rule then does not say it again at WARNING, so one retry is one WARNING line.
    logged = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(ClasscalError):
    """A missing or malformed environment variable; the message names it."""

    code = "config_error"


class PermanentError(ClasscalError):
    """The input can never succeed: log it, record it, acknowledge it."""

    code = "permanent_error"


class TransientError(ClasscalError):
    """The same input may succeed later: retry it."""

    code = "transient_error"


class InvalidMessage(PermanentError):
    """A Pub/Sub message or HTTP body that does not follow the contract."""

    code = "invalid_message"


class BookingNotFound(PermanentError):
    code = "booking_not_found"


class InvalidBooking(PermanentError):
    """A booking document that cannot be scheduled as it stands (missing times, ...)."""

    code = "invalid_booking"


class GoogleUnavailable(TransientError):
    """Google answered 429, 5xx, a rate-limit 403, or not at all, after the client's retries."""

    code = "google_unavailable"


class CalendarUsageLimited(GoogleUnavailable):
    """Google Calendar's usage limits (quotaExceeded, dailyLimitExceeded): the calendar
    stays read-only for hours, so retrying in seconds only spends attempts."""

    code = "calendar_usage_limits"


class AdminReconnectRequired(TransientError):
    """The admin's refresh token is missing, revoked or lacks a scope: reconnect Google."""

    code = "admin_reconnect_required"


class DelegationRefused(TransientError):
    """Service-account mode: Google will not let the service account act as ADMIN_EMAIL
    (delegation not granted for its client id and scope, an unknown subject, or IAM
    refusing to sign). The message says what the Workspace administrator must grant."""

    code = "delegation_refused"


class ConferencePending(TransientError):
    """Google is still creating the Meet conference."""

    code = "conference_pending"


class BookingBusy(TransientError):
    """Another delivery holds the booking's scheduling lease."""

    code = "booking_busy"


class InvalidAttendee(PermanentError):
    """Google refused an event because of an attendee's address (400 invalid)."""

    code = "invalid_attendee"


class NotFound(ClasscalError):
    """A Google resource (event, channel, secret) does not exist."""

    code = "not_found"


class Gone(ClasscalError):
    """Google says the resource is deleted, or a sync token expired (HTTP 410)."""

    code = "gone"


class Duplicate(ClasscalError):
    """An insert with a client-supplied id that already exists (HTTP 409)."""

    code = "duplicate"


class InvalidParameter(InvalidMessage):
    """An HTTP query parameter that does not follow the contract; ``parameter`` names it."""

    code = "invalid_parameter"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class ConnectionRefused(PermanentError):
    """The admin's attempt to connect Google cannot complete as it stands.

    ``http_status`` is the answer to send; ``title`` and ``advice`` are plain-language
    text for the admin's browser (never a token or a code).
    """

    code = "connection_refused"

    def __init__(
        self, message: str, *, code: str, http_status: int, title: str, advice: str
    ) -> None:
        super().__init__(message, code=code)
        self.http_status = http_status
        self.title = title
        self.advice = advice


class StoreUnavailable(TransientError):
    """Firestore did not answer (unavailable, deadline exceeded, contention after retries)."""

    code = "store_unavailable"


class ConferenceFailed(PermanentError):
    """Google created the event but could not create its Meet conference."""

    code = "conference_failed"
