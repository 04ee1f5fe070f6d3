"""Half-open time intervals ``[start, end)`` and the UTC days they touch. Pure.

Two intervals overlap when each starts before the other ends, so a class that ends at
10:00 and one that starts at 10:00 do not clash.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

# An interval longer than this is cut for bucketing (a year-long "busy" block still
# blocks, but is kept on at most this many day documents).
MAX_DAYS = 400


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def day_key(day: date) -> str:
    return day.isoformat()


def days_touched(start: datetime, end: datetime) -> Iterator[str]:
    """The UTC days ``[start, end)`` touches, as ``YYYY-MM-DD`` keys (at most MAX_DAYS)."""
    first = start.astimezone(UTC).date()
    last = (end.astimezone(UTC) - timedelta(microseconds=1)).date()
    if last < first:
        last = first
    day = first
    for _ in range(MAX_DAYS):
        yield day_key(day)
        if day >= last:
            return
        day += timedelta(days=1)


def parse_instant(value: object) -> datetime | None:
    """A stored instant (a datetime, or an RFC 3339 string with an offset), in UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and 0 < len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


def hours_touched(start: datetime, end: datetime) -> Iterator[str]:
    """The UTC hours ``[start, end)`` touches, as ``YYYY-MM-DDTHH`` keys (at most a week)."""
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    last = end.astimezone(UTC) - timedelta(microseconds=1)
    hour = first
    for _ in range(7 * 24):
        yield hour.strftime("%Y-%m-%dT%H")
        hour += timedelta(hours=1)
        if hour > last:
            return
