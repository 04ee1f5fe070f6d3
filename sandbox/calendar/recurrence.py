"""A small RFC 5545 subset: RRULE with FREQ=DAILY|WEEKLY, INTERVAL, COUNT, UNTIL, BYDAY,
and EXDATE.

Instances recur in wall-clock time of the event's time zone, as Google does,
so a weekly 18:00 class stays at 18:00 across a daylight-saving change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sandbox.core.timeutil import zone as load_zone

# Expansion stops here for rules with neither COUNT nor UNTIL and no window end.
MAX_INSTANCES = 1000

_WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}


class RecurrenceError(ValueError):
    """The recurrence lines cannot be understood."""


@dataclass(frozen=True)
class Rule:
    freq: str
    interval: int
    count: int | None
    until: datetime | date | None
    by_day: tuple[int, ...] | None


@dataclass(frozen=True)
class Recurrence:
    rule: Rule
    exdates: frozenset[datetime | date]


def parse(lines: list[str], zone: tzinfo) -> Recurrence:
    rule: Rule | None = None
    exdates: set[datetime | date] = set()
    for line in lines:
        if not isinstance(line, str) or ":" not in line:
            raise RecurrenceError(f"invalid recurrence line {line!r}")
        head, _, value = line.partition(":")
        name, *params = head.upper().split(";")
        if name == "RRULE":
            if rule is not None:
                raise RecurrenceError("more than one RRULE is not supported by the sandbox")
            rule = _parse_rule(value, zone)
        elif name == "EXDATE":
            exdates.update(_parse_dates(value, params, zone))
        elif name in ("RDATE", "EXRULE"):
            raise RecurrenceError(f"{name} is not supported by the sandbox")
        else:
            raise RecurrenceError(f"invalid recurrence line {line!r}")
    if rule is None:
        raise RecurrenceError("recurrence without an RRULE")
    return Recurrence(rule, frozenset(exdates))


def _parse_rule(value: str, zone: tzinfo) -> Rule:
    parts: dict[str, str] = {}
    for item in value.split(";"):
        key, sep, val = item.partition("=")
        if not sep:
            raise RecurrenceError(f"invalid RRULE part {item!r}")
        parts[key.upper()] = val.upper()
    freq = parts.get("FREQ")
    if freq not in ("DAILY", "WEEKLY"):
        raise RecurrenceError(f"FREQ={freq} is not supported by the sandbox (DAILY, WEEKLY are)")
    unknown = set(parts) - {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "WKST"}
    if unknown:
        raise RecurrenceError(f"RRULE parts {sorted(unknown)} are not supported by the sandbox")
    try:
        interval = int(parts.get("INTERVAL", "1"))
        count = int(parts["COUNT"]) if "COUNT" in parts else None
    except ValueError as exc:
        raise RecurrenceError("INTERVAL and COUNT must be integers") from exc
    if interval < 1 or (count is not None and count < 1):
        raise RecurrenceError("INTERVAL and COUNT must be positive")
    if count is not None and "UNTIL" in parts:
        raise RecurrenceError("COUNT and UNTIL cannot both be given")
    until = _parse_one_date(parts["UNTIL"], zone) if "UNTIL" in parts else None
    by_day = None
    if "BYDAY" in parts:
        try:
            by_day = tuple(sorted({_WEEKDAYS[d.strip()] for d in parts["BYDAY"].split(",")}))
        except KeyError as exc:
            raise RecurrenceError(f"invalid BYDAY {parts['BYDAY']!r}") from exc
    return Rule(freq, interval, count, until, by_day)


def _parse_dates(value: str, params: list[str], zone: tzinfo) -> Iterator[datetime | date]:
    tz = zone
    for param in params:
        if param.startswith("TZID="):
            try:
                tz = load_zone(param[5:])
            except ValueError as exc:
                raise RecurrenceError(str(exc)) from exc
    for item in value.split(","):
        yield _parse_one_date(item.strip(), tz)


def _parse_one_date(text: str, zone: tzinfo) -> datetime | date:
    try:
        if len(text) == 8:
            return datetime.strptime(text, "%Y%m%d").date()  # noqa: DTZ007 - a date only
        if text.endswith("Z"):
            return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=zone)
    except ValueError as exc:
        raise RecurrenceError(f"invalid date {text!r}") from exc


def occurrences(
    start: datetime | date,
    zone: tzinfo,
    recurrence: Recurrence,
    window_end: datetime | None = None,
) -> Iterator[datetime | date]:
    """Instance starts in order: aware datetimes for timed events, dates for all-day ones.

    Stops at COUNT, UNTIL, `window_end` (exclusive) or MAX_INSTANCES.
    """
    rule = recurrence.rule
    all_day = not isinstance(start, datetime)
    if isinstance(start, datetime):
        local = start.astimezone(zone)
        first_day, wall = local.date(), local.timetz().replace(tzinfo=None)
    else:
        first_day, wall = start, time(0)
    for produced, day in enumerate(_candidate_days(first_day, rule), start=1):
        moment: datetime | date = day if all_day else datetime.combine(day, wall, tzinfo=zone)
        if rule.until is not None and _after(moment, rule.until, zone):
            return
        if window_end is not None and _instant(moment, zone) >= window_end:
            return
        if rule.count is not None and produced > rule.count:
            return
        if produced > MAX_INSTANCES:
            return
        if not _excluded(moment, recurrence.exdates):
            yield moment


def _candidate_days(first: date, rule: Rule) -> Iterator[date]:
    if rule.freq == "DAILY":
        step = timedelta(days=rule.interval)
        day = first
        while True:
            yield day
            day += step
    # WEEKLY: weeks start on Monday (WKST=MO, Google's default).
    weekdays = rule.by_day if rule.by_day is not None else (first.weekday(),)
    week_start = first - timedelta(days=first.weekday())
    while True:
        for weekday in weekdays:
            day = week_start + timedelta(days=weekday)
            if day >= first:
                yield day
        week_start += timedelta(weeks=rule.interval)


def _instant(moment: datetime | date, zone: tzinfo) -> datetime:
    if isinstance(moment, datetime):
        return moment
    return datetime.combine(moment, time(0), tzinfo=zone)


def _after(moment: datetime | date, until: datetime | date, zone: tzinfo) -> bool:
    if isinstance(until, datetime):
        return _instant(moment, zone) > until
    if isinstance(moment, datetime):
        return moment.astimezone(zone).date() > until
    return moment > until


def _excluded(moment: datetime | date, exdates: frozenset[datetime | date]) -> bool:
    # Aware datetimes hash by instant, so an EXDATE in any zone matches.
    return moment in exdates
