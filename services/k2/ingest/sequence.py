"""Per (exchange, symbol) venue-sequence gap and out-of-order counters (flags, not rejects)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

_KEYS = ["exchange", "symbol"]


@dataclass(frozen=True)
class SequenceReport:
    """What one observation found."""

    gaps: int
    out_of_order: int


class SequenceTracker:
    """Tracks the highest venue sequence seen per (exchange, symbol)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}

    def observe(
        self, exchanges: Sequence[str], symbols: Sequence[str], sequences: Sequence[int]
    ) -> SequenceReport:
        """Count jumps over missing numbers (gaps) and numbers at or below the last seen."""
        gaps = out_of_order = 0
        last = self._last
        for key in zip(exchanges, symbols, sequences, strict=True):
            instrument = (key[0], key[1])
            sequence = key[2]
            previous = last.get(instrument)
            if previous is None:
                last[instrument] = sequence
            elif sequence > previous:
                if sequence > previous + 1:
                    gaps += 1
                last[instrument] = sequence
            else:
                out_of_order += 1
        return SequenceReport(gaps, out_of_order)

    def observe_batch(self, rows: pa.RecordBatch | pa.Table) -> SequenceReport:
        """`observe` over whole columns, every instrument at once (polars window functions),
        instead of Python or Arrow calls per row or per instrument: the highest sequence seen
        before each row is the larger of the instrument's last one and its running maximum
        over the earlier rows of the batch. Null sequences are skipped."""
        frame = pl.from_arrow(rows.select(["exchange", "symbol", "venue_sequence"]))
        assert isinstance(frame, pl.DataFrame)  # a batch or table converts to a frame
        frame = frame.rename({"venue_sequence": "sequence"}).filter(
            pl.col("sequence").is_not_null()
        )
        if frame.is_empty():
            return SequenceReport(0, 0)
        frame = frame.with_columns(pl.col("sequence").cast(pl.Int64))
        last = self._last
        instruments = frame.select(_KEYS).unique(maintain_order=True)
        previous = instruments.with_columns(
            pl.Series(
                "previous",
                [last.get((e, s)) for e, s in instruments.iter_rows()],
                dtype=pl.Int64,
            )
        )
        sequence = pl.col("sequence")
        before = pl.max_horizontal(
            pl.col("previous"), sequence.cum_max().shift(1).over(_KEYS)
        ).alias("before")
        judged = frame.join(previous, on=_KEYS, how="left", maintain_order="left").select(
            sequence, before
        )
        counts = judged.filter(pl.col("before").is_not_null()).select(
            (sequence > pl.col("before") + 1).sum().alias("gaps"),
            (sequence <= pl.col("before")).sum().alias("out_of_order"),
        )
        highest = frame.group_by(_KEYS).agg(sequence.max())
        for exchange, symbol, top in highest.iter_rows():
            known = last.get((exchange, symbol))
            last[(exchange, symbol)] = top if known is None else max(known, top)
        gaps, out_of_order = counts.row(0)
        return SequenceReport(int(gaps), int(out_of_order))
