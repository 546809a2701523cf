"""Query windows: half-open `[start, end)` in UTC, parsed from ISO-8601 text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from k2.query.errors import InvalidTimeRangeError


def zone(name: str) -> ZoneInfo:
    """An IANA time zone, or a clear error."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise InvalidTimeRangeError(f"unknown time zone {name!r}") from e


def parse_instant(text: str, tz: ZoneInfo, *, name: str) -> datetime:
    """ISO-8601 date or date-time to an aware UTC datetime.

    Text without an offset is read as wall time in `tz` (e.g. Australia/Sydney for ASX
    hours); a bare date means its midnight.
    """
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as e:
        raise InvalidTimeRangeError(f"--{name} {text!r} is not an ISO-8601 date or time") from e
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class TimeRange:
    """A half-open UTC window `[start, end)`."""

    start: datetime
    end: datetime

    @classmethod
    def parse(cls, start: str, end: str | None, tz: ZoneInfo) -> TimeRange:
        """`--start`/`--end` text; a missing end means one day after start."""
        start_at = parse_instant(start, tz, name="start")
        end_at = start_at + timedelta(days=1) if end is None else parse_instant(end, tz, name="end")
        if start_at >= end_at:
            raise InvalidTimeRangeError(
                f"--start {start_at.isoformat()} must be before --end {end_at.isoformat()}"
            )
        return cls(start_at, end_at)

    @classmethod
    def day(cls, day: date, tz: ZoneInfo) -> TimeRange:
        """The local calendar day `day` in `tz`."""
        start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        return cls(start.astimezone(UTC), end.astimezone(UTC))
