"""`k2 query ohlcv --chart`: a real PNG of the bars, of a sensible size."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from k2.query.chart import DPI, SIZE_INCHES, render_chart
from k2.query.errors import QueryError
from k2.query.ohlcv import Bar, Interval, bars_table

SYDNEY = ZoneInfo("Australia/Sydney")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _bars(count: int) -> pa.Table:
    """A trading day of 5-minute bars from 10:00 Sydney (23:00 UTC the day before)."""
    start = datetime(2014, 3, 9, 23, 0, tzinfo=UTC)
    bars = []
    for i in range(count):
        price = Decimal("36.70") + Decimal(i % 7) / 100
        bars.append(
            Bar(
                start=start + timedelta(minutes=5 * i),
                open=price,
                high=price + Decimal("0.05"),
                low=price - Decimal("0.03"),
                close=price + (Decimal("0.02") if i % 2 else Decimal("-0.02")),
                volume=Decimal(1000 + 37 * i),
                vwap=price,
                trades=10 + i,
            )
        )
    return bars_table(bars, SYDNEY)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"  # the first chunk of every PNG
    width, height = struct.unpack(">II", data[16:24])
    assert data[-8:-4] == b"IEND"  # and a complete file
    return width, height


def test_a_day_of_bars_is_a_png_of_the_declared_size(tmp_path: Path) -> None:
    path = render_chart(
        _bars(72),
        tmp_path / "charts" / "bhp.png",
        title="BHP 5m bars, 10 March 2014",
        interval=Interval.FIVE_MINUTES,
        tz=SYDNEY,
    )

    assert _png_size(path) == (int(SIZE_INCHES[0] * DPI), int(SIZE_INCHES[1] * DPI))
    # Candles, volume, labels: a drawn picture, not an empty canvas (~3 kB).
    assert path.stat().st_size > 20_000


def test_no_bars_is_an_error_not_an_empty_picture(tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="no bars to draw"):
        render_chart(_bars(0), tmp_path / "x.png", title="t", interval=Interval.ONE_HOUR, tz=SYDNEY)
    assert not (tmp_path / "x.png").exists()
