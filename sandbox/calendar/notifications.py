"""Push notification channels (events.watch) and their delivery threads.

Each channel gets one thread, so its notifications arrive in order while one
slow receiver cannot hold up another. The sandbox only ever connects to
loopback addresses: this machine may send traffic nowhere else, so
notifications for any other address are recorded as undeliverable.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import queue
import re
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.calendar.errors import CalendarError
from sandbox.core import timeutil
from sandbox.core.stats import Stats

LOGGER = logging.getLogger(__name__)

# Google retries these; anything else is final (2xx and 102 count as delivered).
RETRY_STATUSES = frozenset({500, 502, 503, 504})
RETRY_DELAYS = (0.2, 0.5, 1.0)
DELIVERY_TIMEOUT = 5.0
CHANNEL_TTL = timedelta(days=7)
_CHANNEL_ID_RE = re.compile(r"^[A-Za-z0-9\-_+/=]{1,64}$")


def is_loopback_url(address: str) -> bool:
    host = urllib.parse.urlsplit(address).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Channel:
    id: str
    resource_id: str
    resource_uri: str
    calendar_id: str
    owner: str
    address: str
    token: str | None
    expiration: datetime
    params: dict[str, str]
    message_number: int = 0
    # Set by channels.stop: notifications still go out until then, as Google's do.
    linger_until: datetime | None = None
    stopped: threading.Event = field(default_factory=threading.Event)
    outbox: queue.Queue[tuple[int, str]] = field(default_factory=queue.Queue)
    log: list[dict[str, Any]] = field(default_factory=list)
    thread: threading.Thread | None = None

    def expired(self) -> bool:
        return timeutil.now() >= self.expiration

    def active(self) -> bool:
        return self.linger_until is None and not self.stopped.is_set() and not self.expired()

    def delivering(self) -> bool:
        """Still sends notifications: active, or stopped less than the linger ago."""
        if self.stopped.is_set() or self.expired():
            return False
        return self.linger_until is None or timeutil.now() < self.linger_until

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resourceId": self.resource_id,
            "resourceUri": self.resource_uri,
            "calendar": self.calendar_id,
            "owner": self.owner,
            "address": self.address,
            "token": self.token,
            "expiration": timeutil.format_timestamp(self.expiration),
            "stopped": self.stopped.is_set() or self.linger_until is not None,
            "expired": self.expired(),
            "deliveries": list(self.log),
        }


@dataclass(frozen=True)
class ChannelRequest:
    """A validated events.watch body."""

    id: str
    address: str
    token: str | None
    expiration: datetime
    params: dict[str, str]

    def open_on(self, calendar_id: str, owner: str, resource_id: str) -> Channel:
        quoted = urllib.parse.quote(calendar_id, safe="")
        return Channel(
            id=self.id,
            resource_id=resource_id,
            resource_uri=f"https://www.googleapis.com/calendar/v3/calendars/{quoted}/events?alt=json",
            calendar_id=calendar_id,
            owner=owner,
            address=self.address,
            token=self.token,
            expiration=self.expiration,
            params=self.params,
        )


def channel_request(body: dict[str, Any]) -> ChannelRequest:
    """The Channel resource of an events.watch body, checked as Google checks it."""
    channel_id = body.get("id") or ""
    if not _CHANNEL_ID_RE.match(channel_id):
        raise CalendarError(400, "invalid", f"Invalid channel id: {channel_id!r}")
    if body.get("type") not in ("web_hook", "webhook"):
        raise CalendarError(400, "invalid", f"Unknown channel type: {body.get('type')!r}")
    address = body.get("address") or ""
    scheme = urllib.parse.urlsplit(address).scheme
    # The one relaxation: Google takes https only; the sandbox also takes http to loopback.
    if not (scheme == "https" or (scheme == "http" and is_loopback_url(address))):
        raise CalendarError(
            400, "push.webhookUrlNotHttps", f"WebHook callback must be HTTPS: {address}"
        )
    token = body.get("token")
    if token is not None and len(token) > 256:
        raise CalendarError(400, "invalid", "Channel token is longer than 256 characters.")
    expiration = _channel_expiration(body)
    return ChannelRequest(channel_id, address, token, expiration, dict(body.get("params") or {}))


def _channel_expiration(body: dict[str, Any]) -> datetime:
    latest = timeutil.now() + CHANNEL_TTL
    wanted: datetime | None = None
    if body.get("expiration") is not None:
        try:
            wanted = timeutil.from_millis(int(body["expiration"]))
        except (TypeError, ValueError) as exc:
            raise CalendarError(400, "invalid", "Invalid channel expiration.") from exc
    ttl = (body.get("params") or {}).get("ttl")
    if ttl is not None:
        try:
            wanted = timeutil.now() + timedelta(seconds=int(ttl))
        except ValueError as exc:
            raise CalendarError(400, "invalid", "Invalid ttl parameter.") from exc
    # An earlier expiration is honoured; a later one is cut to the maximum.
    return min(wanted, latest) if wanted is not None else latest


class Notifier:
    """Owns the channels and sends their notifications."""

    def __init__(self, lock: threading.RLock, stats: Stats) -> None:
        self.lock = lock  # the Calendar backend's: channels change with its state
        self.stats = stats
        self.channels: dict[str, Channel] = {}
        self.lingering: list[Channel] = []  # stopped, still notifying for a while
        self.linger_seconds = 0.0
        # One resourceId per watched calendar, shared by all its channels, as Google's.
        self.resource_ids: dict[str, str] = {}

    def resource_id_for(self, calendar_id: str) -> str:
        with self.lock:
            return self.resource_ids.setdefault(calendar_id, secrets.token_urlsafe(20)[:27])

    def open(self, channel: Channel) -> None:
        """Register a channel and queue its `sync` message (number 1)."""
        with self.lock:
            self.channels[channel.id] = channel
            self._enqueue(channel, "sync")
        channel.thread = threading.Thread(
            target=self._run, args=(channel,), name=f"channel-{channel.id}", daemon=True
        )
        channel.thread.start()

    def changed(self, calendar_id: str) -> None:
        """Something changed in a calendar's events: tell every live channel on it."""
        with self.lock:
            self.lingering = [c for c in self.lingering if c.delivering()]
            for channel in [*self.channels.values(), *self.lingering]:
                if channel.calendar_id == calendar_id and channel.delivering():
                    self._enqueue(channel, "exists")

    def find(self, channel_id: str) -> Channel | None:
        with self.lock:
            return self.channels.get(channel_id)

    def stop(self, channel: Channel) -> None:
        with self.lock:
            self.channels.pop(channel.id, None)
            if self.linger_seconds > 0:
                channel.linger_until = timeutil.now() + timedelta(seconds=self.linger_seconds)
                self.lingering.append(channel)
            else:
                channel.stopped.set()

    def stop_all(self) -> None:
        with self.lock:
            channels = [*self.channels.values(), *self.lingering]
            self.channels.clear()
            self.lingering.clear()
            self.resource_ids.clear()
        for channel in channels:
            channel.stopped.set()
        for channel in channels:
            if channel.thread is not None and channel.thread is not threading.current_thread():
                channel.thread.join(timeout=0.5)

    def describe(self) -> list[dict[str, Any]]:
        with self.lock:
            return [channel.describe() for channel in self.channels.values()]

    def _enqueue(self, channel: Channel, resource_state: str) -> None:
        channel.message_number += 1
        channel.outbox.put((channel.message_number, resource_state))

    def _run(self, channel: Channel) -> None:
        while not channel.stopped.is_set():
            try:
                number, resource_state = channel.outbox.get(timeout=0.1)
            except queue.Empty:
                if not channel.delivering():
                    channel.stopped.set()
                    return
                continue
            if not channel.delivering():
                channel.stopped.set()
                return
            self._deliver(channel, number, resource_state)

    def _deliver(self, channel: Channel, number: int, resource_state: str) -> None:
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Message-Number": str(number),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-State": resource_state,
            "X-Goog-Resource-URI": channel.resource_uri,
            "X-Goog-Channel-Expiration": timeutil.format_rfc1123(channel.expiration),
            "Content-Length": "0",
        }
        if channel.token is not None:
            headers["X-Goog-Channel-Token"] = channel.token
        entry: dict[str, Any] = {"messageNumber": number, "state": resource_state, "attempts": 0}
        if not is_loopback_url(channel.address):
            self._record(channel, entry, "undeliverable")
            return
        delays = (0.0, *RETRY_DELAYS)
        for delay in delays:
            if delay and channel.stopped.wait(delay):
                self._record(channel, entry, "stopped")
                return
            entry["attempts"] += 1
            status = self._post(channel.address, headers)
            entry["status"] = status
            if status is not None and (200 <= status < 300 or status == 102):
                self._record(channel, entry, "delivered")
                return
            if status is not None and status not in RETRY_STATUSES:
                break
        self._record(channel, entry, "failed")

    @staticmethod
    def _post(address: str, headers: dict[str, str]) -> int | None:
        # http.client rather than urllib: urllib re-capitalises header names
        # ("X-goog-channel-id"), and receivers may compare them as Google writes them.
        parts = urllib.parse.urlsplit(address)
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(parts.hostname or "", parts.port, timeout=DELIVERY_TIMEOUT)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        try:
            connection.request("POST", target, body=b"", headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException) as exc:
            LOGGER.debug("notification to %s failed: %s", address, exc)
            return None
        finally:
            connection.close()

    def _record(self, channel: Channel, entry: dict[str, Any], outcome: str) -> None:
        entry["outcome"] = outcome
        with self.lock:
            channel.log.append(entry)
        self.stats.count("notifications", outcome)
