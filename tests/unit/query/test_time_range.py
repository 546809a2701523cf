"""Query window arguments: parsing, zones, and clear errors."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from k2.errors import K2Error
from k2.query.errors import InvalidTimeRangeError
from k2.query.scan import row_filter
from k2.query.time_range import TimeRange, zone

SYDNEY = ZoneInfo("Australia/Sydney")


def test_offsetless_times_are_wall_time_in_the_zone() -> None:
    window = TimeRange.parse("2014-03-10", None, SYDNEY)
    assert window.start == datetime(2014, 3, 9, 13, tzinfo=UTC)  # AEDT, UTC+11
    assert window.end == datetime(2014, 3, 10, 13, tzinfo=UTC)
    explicit = TimeRange.parse("2014-03-10T10:00:00+11:00", "2014-03-10T11:00:00Z", SYDNEY)
    assert explicit.start == datetime(2014, 3, 9, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2014-03-12", "2014-03-10", "must be before"),
        ("2014-03-10", "2014-03-10", "must be before"),
        ("yesterday", None, "--start 'yesterday' is not an ISO-8601"),
        ("2014-03-10", "2014-13-01", "--end '2014-13-01' is not an ISO-8601"),
    ],
)
def test_bad_windows(start: str, end: str | None, message: str) -> None:
    with pytest.raises(InvalidTimeRangeError, match=message) as info:
        TimeRange.parse(start, end, SYDNEY)
    assert isinstance(info.value, K2Error)


def test_unknown_zone() -> None:
    with pytest.raises(InvalidTimeRangeError, match="unknown time zone"):
        zone("Mars/Olympus")


def test_row_filter_pushes_symbol_and_half_open_time_bounds() -> None:
    text = repr(row_filter("BHP", TimeRange.parse("2014-03-10", None, SYDNEY)))
    assert "symbol" in text and "GreaterThanOrEqual" in text and "LessThan(" in text
