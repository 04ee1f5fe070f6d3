"""Who is calling Calendar, and what their scopes let them do."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.calendar.errors import CalendarError

_SCOPE = "https://www.googleapis.com/auth/calendar"
WRITE_SCOPES = frozenset({_SCOPE, f"{_SCOPE}.events"})
READ_SCOPES = WRITE_SCOPES | {f"{_SCOPE}.readonly", f"{_SCOPE}.events.readonly"}
FREEBUSY_SCOPES = READ_SCOPES | {f"{_SCOPE}.freebusy"}


@dataclass(frozen=True)
class Caller:
    email: str | None  # None: an API key, no user
    scopes: frozenset[str]


API_KEY_CALLER = Caller(None, frozenset())


def auth_error(message: str) -> CalendarError:
    missing = message == "Login Required."
    return CalendarError(
        401,
        "authError",
        message,
        location_type="header",
        location="Authorization",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
        top_message=(
            "Request is missing required authentication credential. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential."
            if missing
            else None
        ),
        details="CREDENTIALS_MISSING" if missing else None,
    )


def require(caller: Caller, allowed: frozenset[str], *, needs_user: bool) -> None:
    """Raise unless the caller's scopes allow the method (an API key passes when no
    user is needed: it reads public calendars only)."""
    if caller.email is None:
        if needs_user:
            raise auth_error("Login Required.")
        return
    if not caller.scopes & allowed:
        raise CalendarError(
            403,
            "insufficientPermissions",
            "Insufficient Permission",
            top_message="Request had insufficient authentication scopes.",
        )
