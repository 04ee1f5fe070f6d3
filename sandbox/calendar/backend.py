"""The Calendar backend: calendars and their events, sync tokens and page cursors,
Meet conference settings and push channels, and the rules that change them.

Usable without HTTP: construct `CalendarBackend()`, pass a `Caller`, get snapshots
(`EventView`, `EventPage`) back and hand them to `render`. Every read and write of
the state happens under `lock` (re-entrant: public methods call each other), which
the push channels' delivery threads share.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sandbox.calendar import conference, event_rules, notifications, query, views
from sandbox.calendar.auth import Caller, auth_error
from sandbox.calendar.errors import CalendarError, bad_request, not_found
from sandbox.calendar.models import (
    BusyResult,
    Calendar,
    CalendarRules,
    ConferenceSettings,
    EventPage,
    EventView,
    PageCursor,
    Span,
    StoredEvent,
    SyncPoint,
    new_event_id,
)
from sandbox.calendar.notifications import Channel, Notifier
from sandbox.core import timeutil
from sandbox.core.ids import random_token
from sandbox.core.schema import DiscoverySchema
from sandbox.core.stats import Stats

DEFAULT_MAX_RESULTS = 250
MAX_MAX_RESULTS = 2500
MAX_PAGE_CURSORS = 10_000

# Access token -> (email, scopes), or None when the token is unknown, expired or revoked.
TokenInfo = Callable[[str], "tuple[str, frozenset[str]] | None"]
KEEP: Any = object()  # put_calendar: leave this setting as it is


class CalendarBackend:
    def __init__(
        self,
        *,
        stats: Stats | None = None,
        token_info: TokenInfo | None = None,
        schema: DiscoverySchema | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.stats = stats if stats is not None else Stats()
        self.schema = schema if schema is not None else DiscoverySchema.bundled("calendar", "v3")
        self._token_info: TokenInfo = token_info or (lambda token: None)
        self.notifier = Notifier(self.lock, self.stats)
        self._clear()

    def _clear(self) -> None:
        with self.lock:
            self.calendars: dict[str, Calendar] = {}
            self.sync_tokens: dict[str, SyncPoint] = {}
            self.page_cursors: OrderedDict[str, PageCursor] = OrderedDict()
            self.conference_settings = ConferenceSettings()
            self.rules = CalendarRules()
            self.notifier.linger_seconds = self.rules.channel_linger_seconds

    def reset(self) -> None:
        """Forget everything: stop every channel, drop every calendar and token."""
        self.notifier.stop_all()
        self._clear()

    def close(self) -> None:
        self.notifier.stop_all()

    # --- who may see what -------------------------------------------------------

    def authenticate(self, access_token: str | None) -> Caller:
        """The caller an OAuth access token stands for; 401 when it stands for none."""
        info = self._token_info(access_token) if access_token else None
        if info is None:
            raise auth_error("Invalid Credentials")
        email, scopes = info
        return Caller(email, scopes)

    def _calendar_for(self, calendar_id: str, create_owner: str | None) -> Calendar | None:
        """A calendar by id; a primary calendar springs into being for its owner."""
        calendar = self.calendars.get(calendar_id)
        if calendar is None and create_owner is not None and create_owner == calendar_id:
            calendar = Calendar(id=calendar_id, owner=create_owner)
            self.calendars[calendar_id] = calendar
        return calendar

    def _readable(self, caller: Caller, calendar_id: str) -> Calendar:
        if calendar_id == "primary":
            if caller.email is None:
                raise not_found()
            calendar_id = caller.email
        calendar = self._calendar_for(calendar_id, create_owner=caller.email)
        if calendar is None:
            raise not_found()
        if calendar.public or (caller.email is not None and calendar.owner == caller.email):
            return calendar
        raise not_found()

    def _writable(self, caller: Caller, calendar_id: str) -> Calendar:
        calendar = self._readable(caller, calendar_id)
        if calendar.owner != caller.email:
            raise CalendarError(
                403, "requiredAccessLevel", "You need to have writer access to this calendar."
            )
        return calendar

    @staticmethod
    def _zone(time_zone: str | None, calendar: Calendar) -> tzinfo:
        name = time_zone or calendar.time_zone
        try:
            return timeutil.zone(name)
        except ValueError as exc:
            raise bad_request("invalid", f"Invalid time zone: {name}", "timeZone") from exc

    # --- snapshots and bookkeeping ----------------------------------------------

    @staticmethod
    def _touch(calendar: Calendar, event: StoredEvent) -> None:
        """Record a change: a new `updated`, and a place in the calendar's change order
        (what sync tokens are measured against)."""
        calendar.change_seq += 1
        event.change_seq = calendar.change_seq
        event.updated = max(timeutil.now(), event.updated + timedelta(milliseconds=1))
        calendar.updated = event.updated

    def _record_send_updates(self, event: StoredEvent, method_id: str, value: str | None) -> None:
        # No mail is sent; the log lets tests and demos see who would have been told.
        event.send_updates_log.append(
            {
                "method": method_id,
                "sendUpdates": value,
                "attendees": [a.get("email") for a in event.body.get("attendees", [])],
                "at": timeutil.format_timestamp(timeutil.now()),
            }
        )
        self.stats.count("send_updates", value or "unset")

    def _find_event(self, calendar: Calendar, event_id: str) -> tuple[StoredEvent, Span | None]:
        event = calendar.events.get(event_id)
        if event is not None:
            return event, None
        found = event_rules.find_instance(calendar, event_id)
        if found is None:
            raise not_found()
        return found

    def _shown(self, calendar: Calendar, event: StoredEvent, caller: Caller, zone: tzinfo,
               span: Span | None, consumed: set[str]) -> EventView:  # fmt: skip
        """An event as a read shows it: a tombstone bare as the rules say."""
        bare = self.rules.bare_tombstones
        return views.event_view(
            calendar, event, caller.email, zone, span=span, consumed=consumed, bare_tombstones=bare
        )

    # --- events -----------------------------------------------------------------

    def insert(
        self,
        caller: Caller,
        calendar_id: str,
        body: dict[str, Any],
        *,
        send_updates: str | None = None,
        conference_version: int = 0,
        time_zone: str | None = None,
    ) -> EventView:
        with self.lock:
            calendar = self._writable(caller, calendar_id)
            zone = self._zone(time_zone, calendar)
            event_rules.check_types(self.schema, body)
            event_id = body.get("id")
            if event_id is not None:
                if not event_rules.EVENT_ID_RE.match(event_id):
                    raise CalendarError(400, "invalid", "Invalid resource id value.")
                if event_id in calendar.events:
                    raise CalendarError(
                        409, "duplicate", "The requested identifier already exists."
                    )
            else:
                event_id = new_event_id()
                while event_id in calendar.events:
                    event_id = new_event_id()
            if body.get("id") and body.get("iCalUID"):
                raise CalendarError(400, "invalid", "Only one of id and iCalUID may be given.")
            clean = event_rules.clean_event(body, calendar)
            now = timeutil.now()
            event = StoredEvent(
                id=event_id,
                calendar_id=calendar.id,
                body=clean,
                created=now,
                updated=now,
                creator=caller.email,
                order=calendar.next_order,
                change_seq=0,
                ical_uid=body.get("iCalUID") or f"{event_id}@google.com",
            )
            calendar.next_order += 1
            if conference_version == 1 and "conferenceData" in body:
                conference.apply(event, body["conferenceData"], self.conference_settings)
            calendar.events[event_id] = event
            self._touch(calendar, event)
            self._record_send_updates(event, "calendar.events.insert", send_updates)
            view = views.event_view(calendar, event, caller.email, zone, consumed=set())
            self.notifier.changed(calendar.id)
        return view

    def get(
        self, caller: Caller, calendar_id: str, event_id: str, *, time_zone: str | None = None
    ) -> EventView:
        """An event, a tombstone or one instance of a recurring event (by instance id)."""
        with self.lock:
            calendar = self._readable(caller, calendar_id)
            event, span = self._find_event(calendar, event_id)
            zone = self._zone(time_zone, calendar)
            return self._shown(calendar, event, caller, zone, span, set())

    def patch(
        self, caller: Caller, calendar_id: str, event_id: str, body: dict[str, Any], **options: Any
    ) -> EventView:
        """Merge `body` into the event (objects field by field); options as for insert."""
        return self._modify(caller, calendar_id, event_id, body, replace=False, **options)

    def update(
        self, caller: Caller, calendar_id: str, event_id: str, body: dict[str, Any], **options: Any
    ) -> EventView:
        """Replace the event's writable fields with `body`; options as for insert."""
        return self._modify(caller, calendar_id, event_id, body, replace=True, **options)

    def _modify(
        self,
        caller: Caller,
        calendar_id: str,
        event_id: str,
        body: dict[str, Any],
        *,
        replace: bool,
        send_updates: str | None = None,
        conference_version: int = 0,
        time_zone: str | None = None,
    ) -> EventView:
        method_id = "calendar.events.update" if replace else "calendar.events.patch"
        with self.lock:
            calendar = self._writable(caller, calendar_id)
            zone = self._zone(time_zone, calendar)
            event, span = self._find_event(calendar, event_id)
            if span is not None:
                raise CalendarError(
                    400,
                    "invalid",
                    "The sandbox does not support changing one instance of a recurring event.",
                )
            event_rules.check_types(self.schema, body)
            given = {k: body[k] for k in event_rules.WRITABLE_FIELDS if k in body}
            merged = given if replace else event_rules.merge_patch(event.body, given)
            clean = event_rules.clean_event(merged, calendar)
            if any(event.body.get(k) != clean.get(k) for k in ("start", "end", "recurrence")):
                event.sequence += 1
            # conferenceData is not a plain writable field: without
            # conferenceDataVersion=1 the event keeps whatever conference it had.
            if "conferenceData" in event.body:
                clean["conferenceData"] = event.body["conferenceData"]
            event.body = clean
            if conference_version == 1 and "conferenceData" in body:
                conference.apply(event, body["conferenceData"], self.conference_settings)
            elif conference_version == 1 and replace:
                conference.apply(event, None, self.conference_settings)
            self._touch(calendar, event)
            self._record_send_updates(event, method_id, send_updates)
            view = views.event_view(calendar, event, caller.email, zone, consumed=set())
            self.notifier.changed(calendar.id)
        return view

    def delete(
        self, caller: Caller, calendar_id: str, event_id: str, *, send_updates: str | None = None
    ) -> None:
        """Cancel an event. It stays as a tombstone: get still returns it, its id stays
        taken, and incremental listings report it."""
        with self.lock:
            calendar = self._writable(caller, calendar_id)
            event, span = self._find_event(calendar, event_id)
            if span is not None:
                raise CalendarError(
                    400,
                    "invalid",
                    "The sandbox does not support deleting one instance of a recurring event.",
                )
            if event.cancelled:
                raise CalendarError(410, "deleted", "Resource has been deleted")
            event.body["status"] = "cancelled"
            self._touch(calendar, event)
            self._record_send_updates(event, "calendar.events.delete", send_updates)
            self.notifier.changed(calendar.id)

    # --- listing ----------------------------------------------------------------

    def list_events(
        self,
        caller: Caller,
        calendar_id: str,
        listing: query.ListQuery | None = None,
        *,
        max_results: int = DEFAULT_MAX_RESULTS,
        page_token: str | None = None,
        sync_token: str | None = None,
        time_zone: str | None = None,
    ) -> EventPage:
        """One page of a listing. The last page carries a sync token: listing with it
        returns every change since, tombstones included; an expired or foreign token
        answers 410 fullSyncRequired."""
        listing = listing or query.ListQuery()
        max_results = min(max_results, MAX_MAX_RESULTS)
        with self.lock:
            calendar = self._readable(caller, calendar_id)
            zone = self._zone(time_zone, calendar)
            if page_token is not None:
                cursor = self.page_cursors.get(page_token)
                if cursor is None or cursor.calendar_id != calendar.id:
                    raise bad_request("invalid", "Invalid page token value.", "pageToken")
            else:
                since: int | None = None
                if sync_token is not None:
                    point = self.sync_tokens.get(sync_token)
                    if point is None or point.calendar_id != calendar.id:
                        raise CalendarError(
                            410,
                            "fullSyncRequired",
                            "Sync token is no longer valid, a full sync is required.",
                            domain="calendar",
                        )
                    since = point.seq
                entries = query.select(calendar, listing, since)
                sync = since is not None or query.issues_sync_token(listing)
                cursor = PageCursor(calendar.id, entries, 0, calendar.change_seq, sync=sync)
            page, following = query.cut_page(cursor, max_results, self.rules)
            consumed: set[str] = set()
            items = []
            for event_id, start in page:
                event = calendar.events[event_id]
                span = event_rules.span_at(event, start) if start is not None else None
                items.append(self._shown(calendar, event, caller, zone, span, consumed))
            next_page = next_sync = None
            if following is not None:
                next_page = self._remember_cursor(following)
            elif cursor.sync:
                next_sync = self._issue_sync_token(calendar.id, cursor.sync_seq)
            return EventPage(
                calendar_id=calendar.id,
                summary=calendar.summary or calendar.id,
                updated=calendar.updated or timeutil.now(),
                change_seq=calendar.change_seq,
                time_zone=time_zone or calendar.time_zone,
                owner_view=caller.email is not None and caller.email == calendar.owner,
                items=items,
                next_page_token=next_page,
                next_sync_token=next_sync,
            )

    def _remember_cursor(self, cursor: PageCursor) -> str:
        token = random_token("", 48)
        self.page_cursors[token] = cursor
        while len(self.page_cursors) > MAX_PAGE_CURSORS:
            self.page_cursors.popitem(last=False)
        return token

    def _issue_sync_token(self, calendar_id: str, seq: int) -> str:
        token = random_token("CP", 40) + "GAU="  # Google's sync tokens look like base64
        self.sync_tokens[token] = SyncPoint(calendar_id, seq)
        return token

    def freebusy(
        self, caller: Caller, time_min: datetime, time_max: datetime, calendar_ids: list[str]
    ) -> dict[str, BusyResult]:
        results: dict[str, BusyResult] = {}
        with self.lock:
            for calendar_id in calendar_ids:
                try:
                    calendar = self._readable(caller, calendar_id)
                except CalendarError:
                    results[calendar_id] = BusyResult(found=False, busy=[])
                    continue
                results[calendar_id] = BusyResult(True, query.busy(calendar, time_min, time_max))
        return results

    # --- push channels ----------------------------------------------------------

    def watch(self, caller: Caller, calendar_id: str, body: dict[str, Any]) -> Channel:
        """Open a push channel (the Channel resource in `body`); its `sync` message is
        sent at once, an `exists` one after every change to the calendar's events."""
        wanted = notifications.channel_request(body)
        with self.lock:
            calendar = self._readable(caller, calendar_id)
            existing = self.notifier.find(wanted.id)
            if existing is not None and existing.active():
                raise CalendarError(400, "channelIdNotUnique", f"Channel id {wanted.id} not unique")
            resource_id = self.notifier.resource_id_for(calendar.id)
            channel = wanted.open_on(calendar.id, caller.email or "", resource_id)
            self.notifier.open(channel)
        return channel

    def stop_channel(self, caller: Caller, channel_id: str, resource_id: str | None) -> None:
        with self.lock:
            channel = self.notifier.find(channel_id)
            if (
                channel is None
                or channel.resource_id != resource_id
                or channel.owner != caller.email
            ):
                raise CalendarError(404, "notFound", f"Channel '{channel_id}' not found")
            self.notifier.stop(channel)

    # --- the control API's levers and views -------------------------------------

    def put_calendar(
        self,
        calendar_id: str,
        owner: str,
        time_zone: str,
        *,
        public: Any = KEEP,
        summary: Any = KEEP,
    ) -> Calendar:
        """Create or change a calendar; returns a copy of its settings."""
        with self.lock:
            calendar = self.calendars.get(calendar_id)
            if calendar is None:
                calendar = Calendar(id=calendar_id, owner=owner)
                self.calendars[calendar_id] = calendar
            calendar.owner = owner
            if public is not KEEP:
                calendar.public = bool(public)
            calendar.time_zone = time_zone
            if summary is not KEEP:
                calendar.summary = summary
            return copy.copy(calendar)

    def set_conference_settings(self, settings: ConferenceSettings) -> None:
        """How conferences created from now on behave."""
        with self.lock:
            self.conference_settings = settings

    def set_rules(self, rules: CalendarRules) -> None:
        """How listings, tombstones and channels behave from now on."""
        with self.lock:
            self.rules = rules
            self.notifier.linger_seconds = rules.channel_linger_seconds

    def expire_sync_tokens(self, calendar_id: str | None = None) -> int:
        """Forget the sync tokens of a calendar (None: of all); how many were forgotten."""
        with self.lock:
            doomed = [
                token
                for token, point in self.sync_tokens.items()
                if calendar_id is None or point.calendar_id == calendar_id
            ]
            for token in doomed:
                del self.sync_tokens[token]
        return len(doomed)

    def dump(self, calendar_id: str) -> list[tuple[EventView, dict[str, Any]]]:
        """Every event of a calendar, tombstones included, as its owner sees it (no
        pending conference read is used up), with what the sandbox knows of it."""
        with self.lock:
            calendar = self.calendars.get(calendar_id)
            if calendar is None:
                return []
            zone = timeutil.zone(calendar.time_zone)
            dumped = []
            for event in sorted(calendar.events.values(), key=lambda e: e.order):
                view = views.event_view(calendar, event, calendar.owner, zone, consumed=None)
                dumped.append((view, views.sandbox_extras(event)))
            return dumped

    def channels(self) -> list[dict[str, Any]]:
        return self.notifier.describe()
