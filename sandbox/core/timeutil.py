"""RFC 3339 parsing and Google's ways of writing times."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from email.utils import format_datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_LOCAL_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?$")


def now() -> datetime:
    return datetime.now(UTC)


def parse_rfc3339(value: str) -> datetime:
    """An aware datetime from an RFC 3339 timestamp; the offset is mandatory."""
    if not _RFC3339_RE.match(value):
        raise ValueError(f"not an RFC 3339 timestamp with offset: {value!r}")
    # Google ignores sub-second digits beyond milliseconds; fromisoformat
    # accepts at most microseconds, so trim the fraction.
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.upper().replace("Z", "+00:00"))
    return datetime.fromisoformat(text)


def parse_local(value: str, zone: tzinfo) -> datetime:
    """A date-time without offset, read in `zone` (Calendar allows it with a timeZone)."""
    if _RFC3339_RE.match(value):
        return parse_rfc3339(value)
    if not _LOCAL_RE.match(value):
        raise ValueError(f"not a date-time: {value!r}")
    return datetime.fromisoformat(value.upper()).replace(tzinfo=zone)


def parse_date(value: str) -> date:
    if len(value) != 10:
        raise ValueError(f"not a date: {value!r}")
    return date.fromisoformat(value)


def zone(name: str) -> ZoneInfo:
    """A time zone by IANA name; ValueError when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def format_event_time(moment: datetime, in_zone: tzinfo) -> str:
    """Event start/end as Calendar writes them: seconds, numeric offset, Z for UTC."""
    local = moment.astimezone(in_zone).replace(microsecond=0)
    text = local.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def format_timestamp(moment: datetime) -> str:
    """created/updated/timeMin echo: UTC with milliseconds, as Google writes them."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def format_nanos_timestamp(moment: datetime) -> str:
    """Secret Manager (proto Timestamp) style: UTC with microseconds."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}Z"


def format_rfc1123(moment: datetime) -> str:
    """HTTP-date, as in X-Goog-Channel-Expiration."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def to_millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_millis(millis: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
