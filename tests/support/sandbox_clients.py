"""Helpers shared by the sandbox tests: clients built the way the project builds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

from sandbox.control import SandboxControl

CLIENT_ID = "sandbox-tests.apps.googleusercontent.com"
CLIENT_SECRET = "sandbox-tests-secret"  # the sandbox's own test client, not a real secret
REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"
ADMIN = "admin@school.test"
TEACHER = "teacher@school.test"
CALENDAR = "https://www.googleapis.com/auth/calendar"
CALENDAR_EVENTS = "https://www.googleapis.com/auth/calendar.events"
CALENDAR_READONLY = "https://www.googleapis.com/auth/calendar.readonly"
FREEBUSY = "https://www.googleapis.com/auth/calendar.freebusy"

# A fixed Monday in the future, so nothing depends on today's date.
MONDAY = datetime(2031, 3, 3, 13, 0, tzinfo=UTC)


def credentials(sandbox: SandboxControl, email: str = ADMIN, scope: str = CALENDAR) -> Credentials:
    granted = sandbox.issue_token(email, CLIENT_ID, scope)
    return Credentials(
        token=None,
        refresh_token=granted["refresh_token"],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_uri=f"{sandbox.url}/token",
    )


def calendar_service(sandbox: SandboxControl, email: str = ADMIN, scope: str = CALENDAR) -> Any:
    return build(
        "calendar",
        "v3",
        credentials=credentials(sandbox, email, scope),
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": f"{sandbox.url}/calendar/v3/"},
    )


def api_key_service(sandbox: SandboxControl, key: str = "sandbox-api-key") -> Any:
    return build(
        "calendar",
        "v3",
        developerKey=key,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": f"{sandbox.url}/calendar/v3/"},
    )


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event_body(
    start: datetime = MONDAY, minutes: int = 60, summary: str = "English class", **extra: Any
) -> dict[str, Any]:
    return {
        "summary": summary,
        "start": {"dateTime": rfc3339(start)},
        "end": {"dateTime": rfc3339(start + timedelta(minutes=minutes))},
        **extra,
    }


def no_sleep(request: Any, sleeps: list[float] | None = None) -> Any:
    """Replace a googleapiclient request's backoff so retries cost no time."""
    request._sleep = sleeps.append if sleeps is not None else lambda _seconds: None
    request._rand = lambda: 1.0
    return request
