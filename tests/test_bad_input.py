"""Bad input sweep: arbitrary bytes, JSON and headers thrown at every function.

Property-based (hypothesis), through functions-framework's real app for each function,
against the Firestore emulator and the sandbox, with the school's Google account
connected and real bookings seeded through create_event itself (one pending, one
scheduled, one cancelled, one failed), a live watch channel and a synced calendar: a
request that gets past validation goes as deep as the code goes. No fault is injected.

The properties:

- HTTP functions (list_events, oauth_callback, calendar_webhook): no 5xx and no
  traceback in the body, whatever the method, path, query string, headers and body.
  (A 503 is classcal's answer to a Google outage; with none injected, none is due.)
- Event functions (create_event, calendar_maintenance): 200 for every delivery, so a
  malformed message is acknowledged, never retried (functions-framework answers 500
  when the function raises, which is how classcal asks Pub/Sub for a retry).
- Firestore unchanged: every document of every top-level collection (classcal keeps no
  subcollections) is read before and after each example; "unchanged" means every field
  of every document equal. The valid-but-odd inputs that do change something by
  contract have their own properties, each saying exactly what may change:

  * create_event with a valid message naming a seeded booking and any status other
    than ``approved``, ``refunded``, ``cancelled`` or ``charged_back``: only that
    booking's ``paymentStatus``/``paymentId``/``paymentAmount``/``paymentCurrency``,
    to the message's values, and only while it is pending without a final payment
    status. (``approved`` and the cancelling statuses schedule or cancel: the
    create_event and cancellation tests cover those; this sweep sends them only for
    preferences no booking has, which must change nothing.)
  * calendar_maintenance ignores its message body, so any message whose data decodes
    runs maintenance: only ``calendarSync`` (its sync bookkeeping) may change.
  * oauth_callback: a ``GET /start`` adds exactly one ``oauthStates`` document; a real
    state with a garbage code spends that state (``usedAt`` set, ``codeVerifier``
    erased) when the code is there at all, and stores no token.
  * calendar_webhook: a notification with the channel's real id, token and resource id
    and state ``exists``/``not_exists`` is authentic; it syncs the (already in step)
    calendar, so only ``calendarSync`` may change.

What is generated is what can reach a function: header values are latin-1 without
control characters (what an HTTP server passes on); event deliveries are binary-mode
CloudEvents (Eventarc, and the push subscription through functions-framework) or raw
Pub/Sub push bodies. Not generated, because functions-framework answers before any
classcal code runs: a structured-mode CloudEvent whose body is not a JSON object (its
500), a raw body that is neither a CloudEvent nor a Pub/Sub push (its 400 or 415).

Reproducible: derandomized, no example database, nothing written to the repository.
Bugs the sweep found are pinned as ``@example``s. ``RECONCILE_GRACE_MINUTES`` is 0, so
that every maintenance run reconsiders every booking at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import functions_framework
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from localstack.constants import CALENDAR_CHANGES, PROJECT
from localstack.processes import cloud_event_headers
from shared.domain import busy_slots
from shared.domain.payments import APPROVED, CANCELLING_STATUSES
from shared.google import tokens
from shared.stores import bookings
from shared.web.pubsub import MAX_MESSAGE_BYTES
from tests.support.calendar_sync import ManualChannel, configure, manual_channel
from tests.support.mercadopago import pull, subscribe
from tests.support.scheduling import Booking, payment, read_booking, write_booking

# functions-framework's own conversion of a raw Pub/Sub push that has no publishTime.
pytestmark = pytest.mark.filterwarnings("ignore:datetime.datetime.utcnow:DeprecationWarning")

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions"
FUNCTION_NAMES = (
    "list_events",
    "oauth_callback",
    "calendar_webhook",
    "create_event",
    "calendar_maintenance",
)
SITE = "https://school.example"
NOWHERE = "http://127.0.0.1:9/calendar-webhook"  # loopback, nothing listens
PAYMENT_FIELDS = {"paymentStatus", "paymentId", "paymentAmount", "paymentCurrency"}
SYNC = "calendarSync"
CHANNELS = "calendarChannels"
# Answered by functions-framework's routing before the function runs: 308 merges the
# slashes of "//x"; 404 for /robots.txt and /favicon.ico.
FRAMEWORK_STATUSES = (308, 404)

# Placeholders for values only the running test knows (Stack.fill replaces them).
BOOKING_STATES = ("pending", "scheduled", "cancelled", "failed")
SEEDED = tuple(f"@@booking-{state}@@" for state in BOOKING_STATES)
CHANNEL_ID, CHANNEL_TOKEN, RESOURCE_ID = "@@channel-id@@", "@@channel-token@@", "@@resource@@"

# Beside its example database (off below), hypothesis caches Unicode tables and source
# constants under its home directory: that is kept out of the repository too.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "classcal-hypothesis")
SWEEP = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every run and in CI
    database=None,  # nothing written to .hypothesis/ in the repository
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one seeded stack serves a test's examples
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


# --- the stack ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def apps() -> dict[str, Any]:
    """One functions-framework app per function, built once for the module."""
    # create_app writes these into os.environ: put them back, nothing leaks to later tests.
    saved = {name: os.environ.get(name) for name in ("FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE")}
    clients = {}
    for name in FUNCTION_NAMES:
        os.environ.pop("FUNCTION_SIGNATURE_TYPE", None)  # each function's decorator decides
        source = str(FUNCTIONS / name / "main.py")
        clients[name] = functions_framework.create_app(name, source).test_client()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return clients


class Stack:
    """The seeded stack a test's examples share (a plain class, so that it prints short)."""

    def __init__(self, db: Any, seeded: tuple[Booking, ...], apps: dict[str, Any]) -> None:
        self.db = db
        self.bookings = seeded  # in the order of BOOKING_STATES
        self.apps = apps
        self.channel: ManualChannel | None = None
        self.pubsub: Any = None
        self.changes = ""  # the pull subscription on calendar-changes

    def __repr__(self) -> str:
        return f"Stack({[b.booking_id for b in self.bookings]})"

    def fill(self, text: str) -> str:
        """``text`` with the strategies' placeholders replaced by this stack's values."""
        for placeholder, booking in zip(SEEDED, self.bookings, strict=True):
            text = text.replace(placeholder, booking.preference_id)
        if self.channel is not None:
            text = text.replace(CHANNEL_ID, self.channel.id)
            text = text.replace(CHANNEL_TOKEN, self.channel.token)
            text = text.replace(RESOURCE_ID, self.channel.resource_id)
        return text


def _publish(client: Any, data: bytes, topic: str) -> int:
    envelope = {
        "message": {"data": base64.b64encode(data).decode(), "messageId": "seed"},
        "subscription": f"projects/{PROJECT}/subscriptions/seed",
    }
    return int(client.post("/", json=envelope, headers=cloud_event_headers(topic)).status_code)


@pytest.fixture
def stack(
    apps: dict[str, Any], connected: Any, firestore: Any, env: pytest.MonkeyPatch
) -> Iterator[Stack]:
    """Bookings in each state, made through create_event, and a synced calendar."""
    # No reconcile grace: every maintenance run reconsiders every booking at once.
    configure(
        env,
        CALENDAR_WEBHOOK_URL=NOWHERE,
        ALLOWED_ORIGINS=SITE,
        BASE_URL=SITE,
        RECONCILE_GRACE_MINUTES="0",
        SESSION_SIGNING_KEY="bad-input-session-signing-key-0123456789",
    )
    busy_slots.reset_cache()
    pending = write_booking(firestore, paymentStatus="pending")
    scheduled = write_booking(firestore, classType="grupal", maxParticipants=4)
    cancelled = write_booking(firestore)
    failed = write_booking(firestore, startTime=None, endTime=None)  # cannot be scheduled
    create = apps["create_event"]
    for data in (
        payment(scheduled.preference_id),
        payment(cancelled.preference_id),
        payment(cancelled.preference_id, "refunded"),
        payment(failed.preference_id),
    ):
        assert _publish(create, data, "payments") == 200
    # The first maintenance run opens the watch channel and syncs the calendar.
    assert _publish(apps["calendar_maintenance"], b"{}", "calendar-maintenance") == 200
    seeded = (pending, scheduled, cancelled, failed)
    states = [read_booking(firestore, b.booking_id) for b in seeded]
    assert [s["status"] for s in states] == ["pending", "scheduled", "cancelled", "pending"]
    assert states[3]["schedulingState"] == bookings.FAILED
    yield Stack(firestore, seeded, apps)
    busy_slots.reset_cache()


@pytest.fixture
def watched(stack: Stack, pubsub: Any) -> Stack:
    """The stack and a channel whose id, token and resource id the test knows, and the
    calendar-changes topic the webhook publishes to, with a subscription to read it.

    Only for the webhook: maintenance would retire it as a second channel."""
    stack.channel = manual_channel()
    stack.pubsub = pubsub
    stack.changes = subscribe(pubsub, CALENDAR_CHANGES)
    return stack


Snapshot = dict[str, dict[str, Any]]


def snapshot(db: Any) -> Snapshot:
    """Every document of every top-level collection, by collection and id."""
    return {c.id: {d.id: d.to_dict() for d in c.stream()} for c in db.collections()}


def changes(before: Snapshot, after: Snapshot) -> dict[str, tuple[Any, Any]]:
    """The documents that differ, by path: (before, after), None where absent."""
    found = {}
    for collection in before.keys() | after.keys():
        old, new = before.get(collection, {}), after.get(collection, {})
        for doc_id in old.keys() | new.keys():
            if old.get(doc_id) != new.get(doc_id):
                found[f"{collection}/{doc_id}"] = (old.get(doc_id), new.get(doc_id))
    return found


def collections_of(diff: dict[str, Any]) -> set[str]:
    return {path.split("/", 1)[0] for path in diff}


def assert_no_server_error(response: Any) -> None:
    body = response.get_data()
    assert response.status_code < 500, (response.status_code, body[:300])
    assert b"Traceback" not in body


def calendar_calls(sandbox: Any) -> dict[str, int]:
    """Calendar requests the sandbox has served so far, by method."""
    requests = sandbox.stats()["requests"]
    return {name: n for name, n in requests.items() if name.startswith("calendar.")}


def closing_line(caplog: pytest.LogCaptureFixture, function: str) -> str:
    """An event function's closing log line as "outcome: reason" (for the statistics)."""
    lines = [r for r in caplog.records if getattr(r, "function", None) == function]
    if not lines:
        return "no closing line"
    return f"{getattr(lines[-1], 'outcome', None)}: {getattr(lines[-1], 'reason', None)}"


class Blob(bytes):
    """Bytes that print short in a falsifying example (some payloads are 64 KiB)."""

    def __repr__(self) -> str:
        if len(self) <= 80:
            return repr(bytes(self))
        return f"{bytes(self[:60])!r} + ... ({len(self)} bytes)"


# --- strategies: text, headers, query strings ----------------------------------------------

# What an HTTP server passes on in a header value: latin-1, no control characters.
HEADER_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
ODD_TEXT = (
    "",
    " ",
    "*",
    "null",
    "%00",
    "%",
    "\\",
    '"',
    "' OR '1'='1",
    "../../etc/passwd",
    "/",
    ".",
    "..",
    "__name__",
    "<script>alert(1)</script>",
    "ÿ" * 10,
)
huge_text = st.builds(
    lambda unit, n: unit * n, st.text(HEADER_CHARS, min_size=1, max_size=3), st.integers(300, 3000)
)
header_values = st.one_of(st.text(HEADER_CHARS, max_size=60), st.sampled_from(ODD_TEXT), huge_text)
any_text = st.one_of(st.text(max_size=60), st.sampled_from(ODD_TEXT), huge_text)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """RFC 3339 timestamps, mostly well-formed, often just out of range or shape."""
    year = draw(st.one_of(st.integers(2000, 2100), st.sampled_from([0, 1969, 1970, 9000, 9999])))
    month = draw(st.one_of(st.integers(1, 12), st.sampled_from([0, 13])))
    day = draw(st.one_of(st.integers(1, 28), st.sampled_from([0, 29, 30, 31, 32])))
    hour = draw(st.one_of(st.integers(0, 23), st.just(24)))
    minute = draw(st.one_of(st.integers(0, 59), st.just(60)))
    second = draw(st.one_of(st.integers(0, 59), st.sampled_from([60, 61])))
    digits = st.text("0123456789", min_size=1, max_size=12)
    fraction = draw(st.one_of(st.just(""), digits.map(".{}".format)))
    separator = draw(st.sampled_from(["T", "T", "t", " ", ""]))
    offsets = ["Z", "Z", "z", "+00:00", "-03:00", "+05:30", " 03:00", "+24:00", "-23:59", ""]
    offset = draw(st.sampled_from([*offsets, "+0300", "-03", "+99:99"]))
    clock = f"{hour:02d}:{minute:02d}:{second:02d}"
    return f"{year:04d}-{month:02d}-{day:02d}{separator}{clock}{fraction}{offset}"


@st.composite
def windows(draw: st.DrawFn) -> list[tuple[str, str]]:
    """A timeMin, maybe with a timeMax, usually valid: Google is asked for them."""
    # hypothesis wants naive bounds; the datetimes it draws are in UTC.
    near = st.datetimes(datetime(2024, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC))  # noqa: DTZ001
    far = st.datetimes(datetime(1970, 1, 1), datetime(9000, 1, 1), timezones=st.just(UTC))  # noqa: DTZ001
    start = draw(st.one_of(near, far))
    length = draw(
        st.one_of(
            st.timedeltas(timedelta(seconds=1), timedelta(days=91)),
            st.timedeltas(timedelta(days=-2), timedelta(0)),
        )
    )
    zone = timezone(timedelta(minutes=draw(st.integers(-23 * 60, 23 * 60))))
    pairs = [("timeMin", start.astimezone(zone).isoformat())]
    if draw(st.booleans()):
        pairs.append(("timeMax", (start + length).astimezone(zone).isoformat()))
    return pairs


QUERY_NAMES = [
    "timeMin",
    "timeMax",
    "state",
    "code",
    "error",
    "scope",
    "timemin",
    "TIMEMAX",
    "_",
    "alt",
    "key",
]
query_pairs = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(QUERY_NAMES), st.text(max_size=8)),
        st.one_of(any_text, timestamps()),
    ),
    max_size=5,
)
window_pairs = st.lists(
    st.tuples(st.sampled_from(["timeMin", "timeMax"]), st.one_of(timestamps(), any_text)),
    min_size=1,
    max_size=3,
)
# Raw, as a client may send it: bad percent-escapes, '+', ';', '&&', ...
raw_query = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#"), max_size=80
)
query_strings = st.one_of(
    query_pairs.map(urlencode),
    window_pairs.map(urlencode),
    windows().map(urlencode),
    st.tuples(windows(), query_pairs).map(lambda t: urlencode(t[0] + t[1])),
    raw_query,
)

METHODS = [
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "PATCH",
    "OPTIONS",
    "TRACE",
    "PROPFIND",
    "get",
    "FOO",
]
MEDIA_RANGES = [
    "text/html",
    "application/json",
    "*/*",
    "application/*",
    "text/*",
    "/",
    "a/b/c",
    "json",
]
accept_values = st.one_of(
    header_values,
    st.lists(
        st.tuples(
            st.sampled_from(["", *MEDIA_RANGES]),
            st.one_of(st.floats().map(str), st.sampled_from(["", "x", "1e400", "-1", "0.5"])),
        ).map(lambda t: f"{t[0]};q={t[1]}"),
        min_size=1,
        max_size=4,
    ).map(", ".join),
)
etag_values = st.one_of(
    header_values,
    st.lists(
        st.sampled_from(['"abc"', 'W/"abc"', "W/", '"', "*", ",", " ", 'W/""']),
        min_size=1,
        max_size=4,
    ).map(",".join),
)
origins = [SITE, SITE + "/", SITE.upper(), " " + SITE, SITE + ":443", "null", "*", "file://"]
# Framing headers (Host, Content-Length, ...) are the server's business, not the function's.
COMMON_HEADERS = {
    "Origin": st.one_of(header_values, st.sampled_from(origins)),
    "If-None-Match": etag_values,
    "Accept": accept_values,
    "Content-Type": st.one_of(
        header_values, st.sampled_from(["application/json", "text/plain", "multipart/form-data"])
    ),
    "Access-Control-Request-Method": header_values,
    "Access-Control-Request-Headers": header_values,
    "Cookie": header_values,
    "Authorization": header_values,
    "Referer": header_values,
    "User-Agent": header_values,
    "X-Forwarded-For": header_values,
}
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3)
    ),
    max_leaves=10,
)
non_objects = st.one_of(json_scalars, st.lists(json_values, max_size=3))
bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def send(self, client: Any, fill: Callable[[str], str] = str) -> Any:
        headers = {name: fill(value) for name, value in self.headers.items()}
        return client.open(
            self.path, method=self.method, query_string=self.query, headers=headers, data=self.body
        )


path_chars = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#")


@st.composite
def requests(
    draw: st.DrawFn,
    paths: tuple[str, ...] = ("/",),
    methods: st.SearchStrategy[str] | None = None,
    query: st.SearchStrategy[str] = query_strings,
) -> Request:
    names = draw(st.lists(st.sampled_from(sorted(COMMON_HEADERS)), max_size=6, unique=True))
    headers = {name: draw(COMMON_HEADERS[name]) for name in names}
    for name in draw(st.lists(st.text("abcXYZ-_019", min_size=1, max_size=12), max_size=2)):
        headers.setdefault(f"X-{name}", draw(header_values))
    known = st.sampled_from(paths)
    path = draw(st.one_of(known, known, st.text(path_chars, max_size=30).map("/{}".format)))
    if methods is None:
        methods = st.one_of(st.just("GET"), st.sampled_from(METHODS))
    method = draw(methods)
    return Request(method, path, draw(query), headers, draw(bodies))


# --- list_events ---------------------------------------------------------------------------


@pytest.mark.slow
@settings(SWEEP, max_examples=80)
@given(request=requests())
def test_list_events_answers_any_request_without_a_server_error(
    stack: Stack, request: Request
) -> None:
    before = snapshot(stack.db)

    response = request.send(stack.apps["list_events"])

    event(f"HTTP {response.status_code}")
    assert_no_server_error(response)
    assert response.status_code in (200, 204, 304, 400, 405, *FRAMEWORK_STATUSES)
    if response.status_code == 400 and request.method.upper() != "HEAD":
        assert json.loads(response.get_data())["parameter"] in ("timeMin", "timeMax")
    assert changes(before, snapshot(stack.db)) == {}


# --- oauth_callback ------------------------------------------------------------------------

# Weighted towards the paths that do something.
OAUTH_PATHS = ("/", "/start", "/start", "/callback", "/callback", "/callback", "/start/")
OAUTH_PATHS += ("/signin", "/healthz", "/retry", "/signout")
OAUTH_PATHS += ("/callback//", "//", "/x", "/start/x", "/Callback")
state_like = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=20, max_size=128
)
oauth_query = st.one_of(
    query_strings,
    st.fixed_dictionaries(
        {},
        optional={
            "state": st.one_of(state_like, any_text),
            "code": any_text,
            "error": st.one_of(st.sampled_from(["access_denied", "server_error"]), any_text),
            "scope": any_text,
        },
    ).map(urlencode),
)


@pytest.mark.slow
@settings(SWEEP, max_examples=80)
@given(request=requests(paths=OAUTH_PATHS, query=oauth_query))
def test_oauth_callback_answers_any_request_without_a_server_error(
    stack: Stack, request: Request
) -> None:
    before = snapshot(stack.db)

    response = request.send(stack.apps["oauth_callback"])

    event(f"HTTP {response.status_code}")
    assert_no_server_error(response)
    diff = changes(before, snapshot(stack.db))
    # Nothing an anonymous request does writes anything: a flow's state lives in its
    # signed cookie (a 302 from /signin), and every other path needs a session.
    assert diff == {}


@pytest.mark.slow
@SWEEP
@given(
    code=st.one_of(any_text, st.text(min_size=2000, max_size=2100)),
    error=st.one_of(st.none(), any_text),
    scope=st.one_of(st.none(), any_text),
)
def test_a_real_state_with_a_garbage_code_spends_the_state_and_stores_nothing(
    stack: Stack, code: str, error: str | None, scope: str | None
) -> None:
    from tests.test_oauth_callback import start

    client = stack.apps["oauth_callback"]
    state = parse_qs(urlsplit(start(client)).query)["state"][0]
    params = {"state": state, "code": code, "error": error, "scope": scope}
    query = urlencode({k: v for k, v in params.items() if v is not None})
    before, versions = snapshot(stack.db), tokens.list_versions()

    response = client.get("/callback", query_string=query)

    event(f"HTTP {response.status_code}")
    assert_no_server_error(response)
    assert 400 <= response.status_code < 500
    assert tokens.list_versions() == versions
    diff = changes(before, snapshot(stack.db))
    # Google's error spends the state; without one, only a code of a plausible length does.
    if not error and not 0 < len(code) <= 2048:
        assert diff == {}
        return
    state_path = f"oauthStates/{hashlib.sha256(state.encode()).hexdigest()}"
    assert set(diff) == {state_path}
    old, new = diff[state_path]
    # Spent: recorded once, holding no verifier (that lived in the browser's cookie).
    assert old is None
    assert "codeVerifier" not in new
    assert new["usedAt"] is not None


# --- calendar_webhook ----------------------------------------------------------------------

BAD_CHANNEL_IDS = ["a/b", "/", ".", "..", "__x__", "classcal-0123", CHANNEL_ID + "/x", "x" * 65]
GOOG_HEADERS = {
    "X-Goog-Channel-ID": st.one_of(header_values, st.sampled_from(BAD_CHANNEL_IDS)),
    "X-Goog-Channel-Token": st.one_of(header_values, st.just(CHANNEL_TOKEN + "x")),
    "X-Goog-Resource-ID": header_values,
    "X-Goog-Resource-State": st.one_of(header_values, st.sampled_from(["EXISTS", "exists "])),
    "X-Goog-Message-Number": st.one_of(st.integers(-(2**70), 2**70).map(str), header_values),
    "X-Goog-Resource-URI": header_values,
    "X-Goog-Channel-Expiration": header_values,
}


@st.composite
def notifications(draw: st.DrawFn) -> Request:
    """What the channel really sends, some of its headers dropped or replaced."""
    request = draw(
        requests(
            methods=st.one_of(st.just("POST"), st.just("POST"), st.sampled_from(METHODS)),
            query=st.one_of(st.just(""), query_strings),
        )
    )
    real = st.just(CHANNEL_ID)
    goog = {
        "X-Goog-Channel-ID": draw(st.one_of(real, real, real, st.sampled_from(BAD_CHANNEL_IDS))),
        "X-Goog-Channel-Token": CHANNEL_TOKEN,
        "X-Goog-Resource-ID": RESOURCE_ID,
        "X-Goog-Resource-State": draw(st.sampled_from(["sync", "exists", "not_exists", ""])),
        "X-Goog-Message-Number": str(draw(st.integers(1, 10**6))),
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/primary/events",
    }
    for name in draw(st.lists(st.sampled_from(sorted(GOOG_HEADERS)), max_size=3, unique=True)):
        if draw(st.booleans()):
            goog.pop(name, None)
        else:
            goog[name] = draw(GOOG_HEADERS[name])
    headers = {**request.headers, **goog}
    return Request(request.method, request.path, request.query, headers, request.body)


def authentic(request: Request) -> bool:
    """Whether the channel really sent this notification, asking for a sync."""
    headers = request.headers
    return (
        request.method.upper() == "POST"
        and request.path not in ("/robots.txt", "/favicon.ico")
        and headers.get("X-Goog-Channel-ID") == CHANNEL_ID
        and headers.get("X-Goog-Channel-Token") == CHANNEL_TOKEN
        and headers.get("X-Goog-Resource-ID") == RESOURCE_ID
        and headers.get("X-Goog-Resource-State") in ("exists", "not_exists")
    )


def _notification(channel_id: str) -> Request:
    headers = {
        "X-Goog-Channel-ID": channel_id,
        "X-Goog-Channel-Token": "t",
        "X-Goog-Resource-State": "exists",
    }
    return Request("POST", "/", "", headers, b"")


@pytest.mark.slow
@settings(SWEEP, max_examples=80)
@given(request=notifications())
@example(request=_notification("a/b"))  # not a document id: was a 500
@example(request=_notification("__x__"))  # a reserved document id: was a 503 (Google retries)
def test_calendar_webhook_answers_any_notification_without_a_server_error(
    watched: Stack, request: Request
) -> None:
    before = snapshot(watched.db)

    response = request.send(watched.apps["calendar_webhook"], watched.fill)

    event("authentic" if authentic(request) else f"HTTP {response.status_code}")
    assert_no_server_error(response)
    diff = changes(before, snapshot(watched.db))
    published = pull(watched.pubsub, watched.changes)
    if authentic(request):
        assert response.status_code == 200
        # Handed on (at most once: a lower or equal message number is a replay); the
        # sync itself is calendar_sync's, so the webhook writes only on the channel.
        assert len(published) <= 1
        assert all(m["channelId"] == watched.channel.id for m in published)
        assert collections_of(diff) <= {CHANNELS}
        # On its channel, a notification notes only its message number and time.
        for path, (old, new) in diff.items():
            if path.startswith(f"{CHANNELS}/"):
                touched = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
                assert touched <= {"lastMessageNumber", "lastNotificationAt"}, touched
    else:
        assert response.status_code in (200, 403, 405, *FRAMEWORK_STATUSES)
        assert diff == {}
        assert published == []


# --- payment messages ----------------------------------------------------------------------


def printable(limit: int, exclude: str = "") -> st.SearchStrategy[str]:
    """Strings the contract accepts: printable, not blank, at most ``limit`` long."""
    alphabet = st.characters(
        categories=("L", "M", "N", "P", "S"), include_characters=" ", exclude_characters=exclude
    )
    return st.text(alphabet, min_size=1, max_size=limit).filter(
        lambda s: bool(s.strip()) and s.isprintable()
    )


@st.composite
def valid_payments(
    draw: st.DrawFn, preference: st.SearchStrategy[str], status: st.SearchStrategy[str]
) -> dict[str, Any]:
    message: dict[str, Any] = {"preferenceId": draw(preference), "status": draw(status)}
    optional = {
        "paymentId": st.one_of(st.none(), printable(128)),
        "amount": st.one_of(st.none(), st.integers(0, 10**12), st.floats(0, 1e12)),
        "currency": st.one_of(st.none(), printable(8)),
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), unique=True)):
        message[name] = draw(optional[name])
    # Unknown keys are ignored, by contract.
    unknown = st.sampled_from(["preferenceID", "merchantOrder", "__proto__", "x"])
    message.update(draw(st.dictionaries(unknown, json_values, max_size=2)))
    return message


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()
TEXT_LIMITS = {"preferenceId": 256, "status": 64, "paymentId": 128, "currency": 8}
NON_PRINTABLE = ["\x00", "\n", "\t", "\x7f", "\u2028", "\u200b", "\ud800", "\x1b[31m"]
wrong_types = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(),
    st.lists(json_scalars, max_size=2),
    st.dictionaries(st.text(max_size=4), json_scalars, max_size=2),
)
texts = st.sampled_from(sorted(TEXT_LIMITS))
# Each makes its field invalid on its own: (field, value), or (field, MISSING).
corruptions = st.one_of(
    st.tuples(st.sampled_from(["preferenceId", "status"]), st.sampled_from([MISSING, None])),
    st.tuples(texts, wrong_types),
    st.tuples(texts, st.sampled_from(["", " ", "\t \n"])),
    texts.map(lambda name: (name, "x" * (TEXT_LIMITS[name] + 1))),
    st.tuples(texts, st.tuples(printable(20), st.sampled_from(NON_PRINTABLE)).map("".join)),
    st.tuples(st.just("preferenceId"), printable(40).map("{}/x".format)),
    st.tuples(
        st.just("amount"),
        st.one_of(
            st.booleans(),
            st.text(max_size=5),
            st.sampled_from([float("nan"), float("inf"), -1, -0.01, 1e12 + 1, 10**30, [1], {}]),
        ),
    ),
)
any_status = st.one_of(st.sampled_from(["approved", *CANCELLING_STATUSES]), printable(64))


@st.composite
def invalid_payments(draw: st.DrawFn) -> bytes:
    """Nearly valid payment messages with at least one field wrong; some name real bookings."""
    preference = st.one_of(st.sampled_from(SEEDED), printable(40, "/"))
    message = draw(valid_payments(preference, any_status))
    for name, value in draw(st.lists(corruptions, min_size=1, max_size=3)):
        if value is MISSING:
            message.pop(name, None)
        else:
            message[name] = value
    return json.dumps(message, allow_nan=True).encode()


# JSON that json.loads refuses with ValueError (an integer over 4300 digits) and
# RecursionError (deep nesting) instead of JSONDecodeError: both were retried as bugs.
BIG_NUMBER = b"1" * 5000
DEEP_NESTING = b"[" * 50_000
BIG_AMOUNT = b'{"preferenceId": "p", "status": "approved", "amount": ' + b"9" * 5000 + b"}"
unknown_preference = valid_payments(printable(40, "/").map("unknown-{}".format), any_status)
payloads = st.one_of(
    # Valid, for a preference no booking has: acknowledged as booking_not_found.
    unknown_preference.map(lambda v: json.dumps(v).encode()),
    invalid_payments(),
    invalid_payments(),
    st.binary(max_size=600),
    st.binary(min_size=1, max_size=100).map(lambda b: b"\xff" + b),  # not UTF-8
    non_objects.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.text(max_size=10), json_values, max_size=5).map(
        lambda v: json.dumps(v).encode()
    ),
    st.sampled_from([BIG_NUMBER, DEEP_NESTING, BIG_AMOUNT, b" " * (MAX_MESSAGE_BYTES + 1), b""]),
    # Huge: long strings, long numbers, deep nesting, all under the 64 KiB limit.
    st.integers(257, 60_000).map(
        lambda n: json.dumps({"preferenceId": "p" * n, "status": "approved"}).encode()
    ),
    st.integers(1, 60_000).map(lambda n: b'{"amount": ' + b"7" * n + b"}"),
    st.integers(1, 30_000).map(lambda n: b'{"a": ' + b"[" * n + b"]" * n + b"}"),
)


# --- event deliveries ----------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One push of a (maybe broken) Pub/Sub message to an event function."""

    envelope: Any  # the push body: JSON, or raw bytes
    payload: bytes | None  # the message data before base64; None: the envelope has its own
    raw_push: bool  # no CloudEvent headers: functions-framework converts the push body
    ce_headers: dict[str, str] = field(default_factory=dict)
    decodable: bool = False  # the function gets a message whose data decodes

    def __post_init__(self) -> None:
        if self.payload is not None:
            object.__setattr__(self, "payload", Blob(self.payload))
        if isinstance(self.envelope, bytes):
            object.__setattr__(self, "envelope", Blob(self.envelope))

    def send(self, client: Any, topic: str, fill: Callable[[str], str] = str) -> Any:
        body = self.envelope
        if self.payload is not None:
            data = fill(self.payload.decode("latin-1")).encode("latin-1")
            body = {**body, "message": {**body["message"], "data": base64.b64encode(data).decode()}}
        content = body if isinstance(body, bytes) else json.dumps(body, allow_nan=True).encode()
        if self.raw_push:
            path = f"/projects/{PROJECT}/topics/{topic}"
            return client.post(path, data=content, headers={"Content-Type": "application/json"})
        return client.post(
            "/", data=content, headers={**cloud_event_headers(topic), **self.ce_headers}
        )


def pushed(payload: bytes) -> Delivery:
    return Delivery({"message": {"messageId": "m"}}, payload, False, decodable=True)


message_extras = st.fixed_dictionaries(
    {},
    optional={
        "attributes": st.one_of(
            st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3), json_values
        ),
        "publishTime": json_values,
        "orderingKey": json_values,
        "deliveryAttempt": json_values,
    },
)
not_base64 = st.one_of(
    st.tuples(
        st.text(max_size=20), st.sampled_from("!#$%&*()-_.,:é\n\x00 "), st.text(max_size=20)
    ).map("".join),
    st.sampled_from(["abc", "a", "====", "ab=c", "e30", "é", "e30=\n"]),  # bad padding too
)
too_long_data = "A" * (MAX_MESSAGE_BYTES * 4 // 3 + 8)
# CloudEvent attributes the cloudevents library still reads as a CloudEvent.
CE_NAMES = "ce-id ce-source ce-type ce-subject ce-time ce-dataschema ce-traceparent ce-foo"
ce_attributes = st.dictionaries(
    st.sampled_from(CE_NAMES.split()),
    st.text(HEADER_CHARS, min_size=1, max_size=60).filter(str.strip),
    max_size=4,
)
# create_event reads the data, so most of its deliveries carry some; calendar_maintenance
# ignores it, so the envelope is what its deliveries vary.
PAYMENT_KINDS = ["decodable"] * 6 + ["raw_push", "bad_data", "no_message", "no_data", "bad_body"]
TICK_KINDS = ["decodable", "raw_push", "bad_data", "bad_data", "no_message", "no_data", "bad_body"]


@st.composite
def deliveries(draw: st.DrawFn, kinds: list[str] = PAYMENT_KINDS) -> Delivery:
    kind = draw(st.sampled_from(kinds))
    if kind in ("decodable", "raw_push"):
        message = {"messageId": draw(st.one_of(st.text(max_size=20), json_values))}
        message.update(draw(message_extras))
        envelope = {"message": message, "subscription": draw(st.text(max_size=30))}
        raw = kind == "raw_push"
        headers = {} if raw else draw(ce_attributes)
        return Delivery(envelope, draw(payloads), raw, headers, decodable=True)
    if kind == "bad_data":
        not_a_string = st.one_of(
            st.none(), st.booleans(), st.integers(), st.floats(), st.lists(json_values, max_size=3)
        )
        data = draw(st.one_of(not_base64, not_base64, not_a_string, st.just(too_long_data)))
        message = {"data": data, "messageId": "m", **draw(message_extras)}
        return Delivery({"message": message, "subscription": "s"}, None, draw(st.booleans()))
    if kind == "no_message":
        keys = st.text(max_size=10).filter(lambda k: k != "message")
        envelope = draw(
            st.one_of(
                st.dictionaries(keys, json_values, max_size=4),
                non_objects.map(lambda m: {"message": m, "subscription": "s"}),
            )
        )
        return Delivery(envelope, None, False, draw(ce_attributes))
    if kind == "no_data":
        # No data is empty data: malformed for create_event, but a message all the same.
        keys = st.text(max_size=8).filter(lambda k: k != "data")
        message = draw(st.dictionaries(keys, json_values, max_size=3))
        return Delivery({"message": message}, None, False, draw(ce_attributes), decodable=True)
    body = draw(
        st.one_of(st.binary(max_size=300), non_objects.map(lambda v: json.dumps(v).encode()))
    )
    return Delivery(body, None, False, draw(ce_attributes))


# --- create_event --------------------------------------------------------------------------


@pytest.mark.slow
@settings(SWEEP, max_examples=80)
@given(delivery=deliveries())
@example(delivery=pushed(BIG_NUMBER))  # json.loads: ValueError, was retried
@example(delivery=pushed(DEEP_NESTING))  # json.loads: RecursionError, was retried
@example(delivery=pushed(BIG_AMOUNT))
def test_create_event_acknowledges_any_malformed_message_and_changes_nothing(
    stack: Stack, delivery: Delivery, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    before, calls = snapshot(stack.db), calendar_calls(sandbox)

    response = delivery.send(stack.apps["create_event"], "payments", stack.fill)

    event(closing_line(caplog, "create_event"))
    assert response.status_code == 200, response.get_data()[:300]
    assert changes(before, snapshot(stack.db)) == {}
    assert calendar_calls(sandbox) == calls


other_statuses = st.one_of(
    st.sampled_from(["pending", "in_process", "rejected", "in_mediation", "Approved", " refunded"]),
    printable(64),
).filter(lambda s: s != APPROVED and s not in CANCELLING_STATUSES)


@pytest.mark.slow
@SWEEP
@given(message=valid_payments(st.sampled_from([SEEDED[0], SEEDED[0], *SEEDED]), other_statuses))
def test_another_status_changes_only_the_payment_fields_of_a_pending_booking(
    stack: Stack, message: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    state = BOOKING_STATES[SEEDED.index(message["preferenceId"])]
    booking_id = stack.bookings[BOOKING_STATES.index(state)].booking_id
    before = snapshot(stack.db)
    booking = before["virtualClasses"][booking_id]

    response = pushed(json.dumps(message).encode()).send(
        stack.apps["create_event"], "payments", stack.fill
    )

    event(f"{state} booking, {closing_line(caplog, 'create_event')}")
    assert response.status_code == 200, response.get_data()[:300]
    diff = changes(before, snapshot(stack.db))
    recordable = booking["status"] == bookings.PENDING and (
        booking.get("paymentStatus") not in bookings.FINAL_PAYMENT_STATUSES
    )
    if not recordable:
        assert diff == {}
        return
    assert set(diff) <= {f"virtualClasses/{booking_id}"}
    written = {
        "paymentStatus": message["status"],
        "paymentId": message.get("paymentId"),
        "paymentAmount": message.get("amount"),
        "paymentCurrency": message.get("currency"),
    }
    after = read_booking(stack.db, booking_id)
    assert after == {**booking, **{k: v for k, v in written.items() if v is not None}}
    assert set(after) - set(booking) <= PAYMENT_FIELDS


# --- calendar_maintenance ------------------------------------------------------------------


@pytest.mark.slow
@settings(SWEEP, max_examples=40)
@given(delivery=deliveries(TICK_KINDS))
def test_calendar_maintenance_acknowledges_any_message_and_leaves_bookings_alone(
    stack: Stack, delivery: Delivery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    before = snapshot(stack.db)

    response = delivery.send(stack.apps["calendar_maintenance"], "calendar-maintenance")

    event(closing_line(caplog, "calendar_maintenance"))
    assert response.status_code == 200, response.get_data()[:300]
    diff = changes(before, snapshot(stack.db))
    if delivery.decodable:
        # The body is ignored: maintenance runs, and only its sync bookkeeping may move.
        assert collections_of(diff) <= {SYNC}
    else:
        assert diff == {}
