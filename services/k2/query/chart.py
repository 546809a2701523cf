"""OHLCV bars as a PNG: candles above, volume below, times on the axis in the query's zone.

Drawn with matplotlib's Agg backend (no display, no browser). The bars themselves stay exact
decimals everywhere else; here prices and volumes become floats *for drawing only* (a pixel
has no use for the 8th decimal place), and nothing drawn is ever read back as data.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import pyarrow as pa

from k2.query.errors import QueryError
from k2.query.ohlcv import Interval

UP: Final = "#1a7f37"
DOWN: Final = "#cf222e"
SIZE_INCHES: Final = (12.0, 6.75)  # 1200 x 675 px at DPI
DPI: Final = 100
_WIDTH_FRACTION: Final = 0.7  # of a bucket: the gap between candles keeps them apart


def _bucket(interval: Interval) -> timedelta:
    multiple, unit = interval.temporal
    return timedelta(**{f"{unit}s": multiple})


def render_chart(
    bars: pa.Table, path: Path, *, title: str, interval: Interval, tz: ZoneInfo
) -> Path:
    """Write `bars` (as `k2.query.ohlcv.bars_table` makes them) to `path` as a PNG."""
    if bars.num_rows == 0:
        raise QueryError("no bars to draw")
    # Imported here: matplotlib costs ~0.3 s and only charts need it.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    # Naive local wall times: matplotlib then labels the axis in `tz`, not in UTC.
    starts: list[datetime] = [
        t.astimezone(tz).replace(tzinfo=None) for t in bars["bar_start"].to_pylist()
    ]
    # Floats for drawing only (see the module docstring); the data stays decimal.
    opens, highs, lows, closes, volumes = (
        [float(v) for v in bars[name].to_pylist()]
        for name in ("open", "high", "low", "close", "volume")
    )
    width = _bucket(interval) * _WIDTH_FRACTION
    centres = [start + _bucket(interval) / 2 for start in starts]
    colours = [UP if c >= o else DOWN for o, c in zip(opens, closes, strict=True)]

    figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    price_ax, volume_ax = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    price_ax.vlines(centres, lows, highs, colors=colours, linewidth=1)
    # A bar with open == close has no body height: its edge line still draws it (a doji).
    price_ax.bar(
        centres,
        [abs(c - o) for o, c in zip(opens, closes, strict=True)],
        bottom=[min(o, c) for o, c in zip(opens, closes, strict=True)],
        width=width,
        color=colours,
        edgecolor=colours,
        linewidth=0.8,
    )
    volume_ax.bar(centres, volumes, width=width, color=colours)
    price_ax.set_title(title)
    price_ax.set_ylabel("price")
    volume_ax.set_ylabel("volume")
    volume_ax.set_xlabel(f"time ({tz.key})")
    # matplotlib.dates has no annotations on these two constructors.
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    volume_ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    volume_ax.xaxis.set_major_formatter(formatter)
    for ax in (price_ax, volume_ax):
        ax.grid(True, alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
