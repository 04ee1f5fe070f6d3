"""The calendar client: every Google Calendar call classcal makes goes through here.

It adds three things to google-api-python-client: one connection per thread (httplib2
is not thread-safe), retries by the library's own ``execute(num_retries=...)``,
and the translation of Google's answers into classcal's error types, including (oauth
mode) a second chance with a freshly read refresh token after ``invalid_grant``. Which
credentials, and what a refusal means, is ``shared.google.credentials``' business.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from shared.core.config import get_config
from shared.core.errors import (
    CalendarUsageLimited,
    ClasscalError,
    ConfigError,
    Duplicate,
    Gone,
    GoogleUnavailable,
    InvalidAttendee,
    NotFound,
    PermanentError,
)
from shared.google import clients, tokens
from shared.google import credentials as auth

# Google names a failure twice: the old `errors[].reason` (rateLimitExceeded, ...) and,
# in its current body, an ErrorInfo in `details[]` (RATE_LIMIT_EXCEEDED, ...). Both are
# read; either one is enough. docs/errors.md lists every row and what classcal does.
_RATE_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED"}
)
# Calendar usage limits: the calendar stays read-only for hours, not seconds.
_USAGE_LIMIT_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
_SCOPE_REASONS = frozenset(
    {
        "insufficientPermissions",
        "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        "forbidden",
        "requiredAccessLevel",
    }
)
# The Calendar API is not enabled for the OAuth client's project: an operator's fix.
_DISABLED_REASONS = frozenset({"accessNotConfigured", "SERVICE_DISABLED"})
_ATTENDEE_MESSAGE = "attendee"

_calls: ContextVar[Counter[str] | None] = ContextVar("calendar_calls", default=None)
_local = threading.local()


@contextlib.contextmanager
def count_calls() -> Iterator[Counter[str]]:
    """Count the Calendar calls made inside the block, by method (for log lines)."""
    counter: Counter[str] = Counter()
    outer = _calls.get()
    token = _calls.set(counter)
    try:
        yield counter
    finally:
        _calls.reset(token)
        # A caller counting around several counted blocks (maintenance) sees them all.
        if outer is not None:
            outer.update(counter)


class _Resources:
    """A service's ``events()`` and ``channels()``, each built once.

    googleapiclient builds a new resource object, docstrings of every method included,
    on each ``service.events()``: about 3 ms of CPU. The service and its resources only
    build requests, so one set serves every thread; the requests go out on the
    thread's own connection (``_connection``)."""

    def __init__(self, service: Any) -> None:
        self._service = service
        self._lock = threading.Lock()
        self._events: Any = None
        self._channels: Any = None

    def events(self) -> Any:
        if self._events is None:
            with self._lock:
                if self._events is None:
                    self._events = self._service.events()
        return self._events

    def channels(self) -> Any:
        if self._channels is None:
            with self._lock:
                if self._channels is None:
                    self._channels = self._service.channels()
        return self._channels


# By (API endpoint, API key): tests point one process at several sandboxes.
_services: dict[tuple[str | None, str | None], _Resources] = {}
_services_lock = threading.Lock()


def _service(api_key: str | None) -> _Resources:
    key = (clients.endpoints().calendar_api, api_key)
    service = _services.get(key)
    if service is None:
        with _services_lock:
            service = _services.get(key)
            if service is None:
                service = _Resources(clients.calendar_service(developer_key=api_key))
                _services[key] = service
    return service


def _connection(credentials: Any) -> Any:
    """This thread's connection for ``credentials`` (None: an API-key call)."""
    key = (id(credentials), get_config().google_http_timeout_seconds)
    cached = getattr(_local, "connection", None)
    if cached is None or cached[0] != key:
        http = clients.calendar_http(credentials)
        # Keep a reference to the credentials so their id cannot be reused while cached.
        _local.connection = (key, http, credentials)
        return http
    return cached[1]


def _error_body(error: Any) -> dict[str, Any]:
    try:
        data = json.loads(error.content.decode("utf-8"))
    except (AttributeError, UnicodeDecodeError, ValueError):
        return {}
    body = data.get("error") if isinstance(data, dict) else None
    return body if isinstance(body, dict) else {}


def error_reasons(error: Any) -> tuple[list[str], list[str], str]:
    """The old ``errors[].reason``s, the ``details[]`` ErrorInfo reasons, and the message."""
    body = _error_body(error)

    def reasons(key: str) -> list[str]:
        entries = body.get(key)
        if not isinstance(entries, list):
            return []
        return [str(e["reason"]) for e in entries if isinstance(e, dict) and e.get("reason")]

    messages = [str(body.get("message") or "")]
    entries = body.get("errors")
    if isinstance(entries, list):
        messages += [str(e.get("message") or "") for e in entries if isinstance(e, dict)]
    return reasons("errors"), reasons("details"), " ".join(messages)


def translate_http_error(error: Any, what: str) -> ClasscalError:
    """Map a googleapiclient HttpError to classcal's error types, reading both the old
    ``errors[].reason`` and the current ``details[].reason`` (and ``status``)."""
    status = int(error.status_code or 0)
    old, new, message = error_reasons(error)
    every = {*old, *new, str(_error_body(error).get("status") or "")}
    reason = (old or new or [""])[0]
    label = f"Calendar {what}: HTTP {status} {' '.join(dict.fromkeys(old + new))}".rstrip()
    if status == 401:
        return auth.access_refused(label, lacks_scope=False)
    if status == 403 and every & _DISABLED_REASONS:
        return ConfigError(
            f"{label}: the Google Calendar API is not enabled for the OAuth client's project"
        )
    if status == 403 and every & _SCOPE_REASONS:
        return auth.access_refused(label, lacks_scope=True)
    if status == 403 and every & _USAGE_LIMIT_REASONS:
        return CalendarUsageLimited(
            f"{label}: Google Calendar's usage limits keep the calendar read-only, often for hours"
        )
    if status == 429 or status >= 500 or (status == 403 and every & _RATE_REASONS):
        return GoogleUnavailable(label)
    if status == 400 and reason == "invalid" and _ATTENDEE_MESSAGE in message.lower():
        return InvalidAttendee(label)
    if status == 404:
        return NotFound(label)
    if status == 409:
        return Duplicate(label)
    if status == 410:
        return Gone(label, code=reason or "gone")
    return PermanentError(label, code=f"calendar_{reason or status}")


def execute(
    make_request: Callable[[Any], Any],
    *,
    what: str,
    api_key: str | None = None,
    credentials: Any = None,
) -> Any:
    """Build a request with ``make_request(service)``, run it, and translate failures.

    With ``api_key`` the call is made with that key and no credentials (public calendars).
    With ``credentials`` the call uses them and gets no second chance after
    ``invalid_grant``: it is those credentials that are being tried, not the stored ones.
    """
    from google.auth.exceptions import RefreshError, TransportError
    from googleapiclient.errors import HttpError

    config = get_config()
    given = credentials is not None
    if not given:
        credentials = None if api_key else auth.admin_credentials()
    for attempt in (1, 2):
        counter = _calls.get()
        if counter is not None:
            counter[what] += 1
        try:
            request = make_request(_service(api_key))
            return request.execute(
                http=_connection(credentials), num_retries=config.google_api_retries
            )
        except HttpError as error:
            raise translate_http_error(error, what) from None
        except RefreshError as error:
            if tokens.is_client_refused(error):
                # The deployment's OAuth client id or secret: no retry or reconnect helps.
                raise ConfigError(
                    f"Calendar {what}: Google refused the OAuth client (invalid_client): "
                    "check AUTH_GOOGLE_ID and AUTH_GOOGLE_SECRET"
                ) from None
            try:
                credentials = auth.after_refresh_error(
                    error, credentials, last_try=attempt == 2 or given
                )
            except GoogleUnavailable as unavailable:
                raise GoogleUnavailable(f"Calendar {what}: {unavailable.message}") from None
        except (TimeoutError, TransportError, OSError) as error:
            # httplib2 raises OSError subclasses (and TimeoutError) once its retries are spent.
            raise GoogleUnavailable(f"Calendar {what}: {type(error).__name__}") from None
    raise AssertionError("unreachable")


def calendar_id() -> str:
    return get_config().calendar_id


def insert_event(body: dict[str, Any], *, send_updates: str) -> dict[str, Any]:
    return execute(
        lambda s: s.events().insert(
            calendarId=calendar_id(),
            body=body,
            conferenceDataVersion=1,
            sendUpdates=send_updates,
        ),
        what="events.insert",
    )


def get_event(event_id: str) -> dict[str, Any]:
    return execute(
        lambda s: s.events().get(calendarId=calendar_id(), eventId=event_id),
        what="events.get",
    )


def patch_event(event_id: str, body: dict[str, Any], *, send_updates: str) -> dict[str, Any]:
    """events.patch: only the fields in ``body`` change (a class moved sends only start
    and end, so its attendees, Meet conference and reminders stay as they are)."""
    return execute(
        lambda s: s.events().patch(
            calendarId=calendar_id(), eventId=event_id, body=body, sendUpdates=send_updates
        ),
        what="events.patch",
    )


def delete_event(event_id: str, *, send_updates: str) -> None:
    execute(
        lambda s: s.events().delete(
            calendarId=calendar_id(), eventId=event_id, sendUpdates=send_updates
        ),
        what="events.delete",
    )


def list_events(
    *, api_key: str | None = None, credentials: Any = None, **params: Any
) -> dict[str, Any]:
    """events.list; with ``credentials``, as those instead of the stored admin's (the
    OAuth callback proves a fresh grant works), with ``api_key`` as a public reader."""
    return execute(
        lambda s: s.events().list(calendarId=calendar_id(), **params),
        what="events.list",
        api_key=api_key,
        credentials=credentials,
    )


def watch_events(channel: dict[str, Any]) -> dict[str, Any]:
    return execute(
        lambda s: s.events().watch(calendarId=calendar_id(), body=channel),
        what="events.watch",
    )


def stop_channel(channel_id: str, resource_id: str) -> None:
    execute(
        lambda s: s.channels().stop(body={"id": channel_id, "resourceId": resource_id}),
        what="channels.stop",
    )
