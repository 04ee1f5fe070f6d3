"""Everything the sandbox remembers, in memory, behind one lock.

Handlers run on the server's request threads and the notification threads
read channels, so every read or write of `State` happens under `State.lock`.
The lock is re-entrant because handlers call helpers that take it again.
"""

from __future__ import annotations

import base64
import secrets
import string
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

DEFAULT_TIME_ZONE = "America/Argentina/Buenos_Aires"
DEFAULT_ACCESS_TOKEN_TTL = 3599
MAX_PAGE_CURSORS = 10_000


def random_token(prefix: str, length: int = 64) -> str:
    """Opaque, unpredictable token text in Google's alphabet (letters, digits, - and _)."""
    return prefix + secrets.token_urlsafe(length)[:length]


def new_event_id() -> str:
    """26 base32hex characters, like the ids Calendar generates."""
    return base64.b32hexencode(secrets.token_bytes(20)).decode("ascii").lower()[:26]


def new_meet_code() -> str:
    letters = string.ascii_lowercase
    parts = ("".join(secrets.choice(letters) for _ in range(n)) for n in (3, 4, 3))
    return "-".join(parts)


# --- OAuth ---------------------------------------------------------------


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    redirect_uris: list[str]


@dataclass
class Grant:
    """One user's consent to one client: the refresh token and its access tokens."""

    id: str
    client_id: str
    email: str
    scopes: tuple[str, ...]
    refresh_token: str | None
    nonce: str | None = None
    revoked: bool = False


@dataclass
class AccessToken:
    token: str
    grant_id: str
    email: str
    client_id: str
    scopes: frozenset[str]
    expires_at: datetime


@dataclass
class AuthCode:
    code: str
    client_id: str
    email: str
    scopes: tuple[str, ...]
    redirect_uri: str
    access_type: str
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    expires_at: datetime
    used: bool = False


@dataclass
class OAuthKnobs:
    """Test knobs for the tokens issued next (see control endpoint /_sandbox/oauth)."""

    omit_refresh_token: bool = False
    access_token_ttl: int = DEFAULT_ACCESS_TOKEN_TTL
    id_token: dict[str, Any] = field(default_factory=dict)


# --- Calendar ------------------------------------------------------------


@dataclass
class ConferenceSettings:
    """How conferences created from now on behave (control endpoint /_sandbox/conference)."""

    pending_reads: int = 0
    outcome: str = "success"


@dataclass
class Conference:
    """A Meet conference being created for an event by a createRequest."""

    request_id: str
    solution_type: str
    outcome: str
    pending_left: int
    code: str


@dataclass
class StoredEvent:
    id: str
    calendar_id: str
    body: dict[str, Any]  # the client-writable fields, as stored
    created: datetime
    updated: datetime
    creator: str | None
    order: int
    change_seq: int
    ical_uid: str
    sequence: int = 0
    conference: Conference | None = None
    send_updates_log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.body.get("status", "confirmed")

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"


@dataclass
class Calendar:
    id: str
    owner: str
    public: bool = False
    time_zone: str = DEFAULT_TIME_ZONE
    summary: str | None = None
    events: dict[str, StoredEvent] = field(default_factory=dict)
    change_seq: int = 0
    next_order: int = 0
    updated: datetime | None = None


@dataclass(frozen=True)
class SyncPoint:
    calendar_id: str
    seq: int


# An entry of a listing: an event id, and for an expanded instance its start.
EntryRef = tuple[str, datetime | date | None]


@dataclass
class PageCursor:
    calendar_id: str
    entries: list[EntryRef]
    offset: int
    sync_seq: int


# --- Secret Manager --------------------------------------------------------


@dataclass
class SecretVersion:
    number: int
    data: bytes | None
    state: str
    created: datetime
    client_checksum: bool = False
    destroyed: datetime | None = None


@dataclass
class Secret:
    name: str
    created: datetime
    replication: dict[str, Any]
    labels: dict[str, str]
    versions: dict[int, SecretVersion] = field(default_factory=dict)


# --- Faults and stats ----------------------------------------------------


@dataclass
class Fault:
    method: str | None  # an HTTP method or a discovery method id; None matches any
    path: str  # a regex searched in the request path
    status: int
    reason: str | None
    message: str | None
    remaining: int | None  # None: unlimited
    probability: float | None
    commit: bool
    delay: float | None
    fired: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "remaining": self.remaining,
            "probability": self.probability,
            "commit": self.commit,
            "delay": self.delay,
            "fired": self.fired,
        }


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)
    schema_violations: list[dict[str, str]] = field(default_factory=list)
    faults_fired: int = 0
    send_updates: Counter[str] = field(default_factory=Counter)
    notifications: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "schema_violations": list(self.schema_violations),
            "faults_fired": self.faults_fired,
            "send_updates": dict(self.send_updates),
            "notifications": dict(self.notifications),
        }


class State:
    """All sandbox state. Hold `lock` while reading or changing any of it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.clear()

    def clear(self) -> None:
        with self.lock:
            self.clients: dict[str, OAuthClient] = {}
            self.grants: dict[str, Grant] = {}
            self.refresh_tokens: dict[str, str] = {}  # refresh token -> grant id
            self.access_tokens: dict[str, AccessToken] = {}
            self.codes: dict[str, AuthCode] = {}
            # (client_id, email) -> scopes granted so far, for include_granted_scopes.
            self.granted_scopes: dict[tuple[str, str], list[str]] = {}
            self.oauth_knobs = OAuthKnobs()
            self.calendars: dict[str, Calendar] = {}
            self.sync_tokens: dict[str, SyncPoint] = {}
            self.page_cursors: OrderedDict[str, PageCursor] = OrderedDict()
            self.conference_settings = ConferenceSettings()
            self.secrets: dict[str, Secret] = {}
            self.faults: list[Fault] = []
            self.stats = Stats()

    def calendar_for(self, calendar_id: str, *, create_owner: str | None = None) -> Calendar | None:
        """A calendar by id; a primary calendar springs into being for its owner."""
        calendar = self.calendars.get(calendar_id)
        if calendar is None and create_owner is not None and create_owner == calendar_id:
            calendar = Calendar(id=calendar_id, owner=create_owner)
            self.calendars[calendar_id] = calendar
        return calendar

    def remember_cursor(self, cursor: PageCursor) -> str:
        token = random_token("", 48)
        self.page_cursors[token] = cursor
        while len(self.page_cursors) > MAX_PAGE_CURSORS:
            self.page_cursors.popitem(last=False)
        return token

    def issue_sync_token(self, calendar_id: str, seq: int) -> str:
        token = random_token("CP", 40) + "GAU="  # Google's sync tokens look like base64
        self.sync_tokens[token] = SyncPoint(calendar_id, seq)
        return token
