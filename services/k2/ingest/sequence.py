"""Per (exchange, symbol) venue-sequence gap and out-of-order counters (flags, not rejects)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc


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

    def observe_batch(self, rows: pa.RecordBatch) -> SequenceReport:
        """`observe` over whole columns: per instrument, numpy over its sequences in row order
        (a running maximum), instead of Python per row. Null sequences are skipped."""
        table = pa.table(
            {
                "exchange": rows.column("exchange"),
                "symbol": rows.column("symbol"),
                "sequence": rows.column("venue_sequence"),
            }
        ).filter(pc.is_valid(rows.column("venue_sequence")))
        grouped = table.group_by(["exchange", "symbol"], use_threads=False).aggregate(
            [("sequence", "list")]
        )
        gaps = out_of_order = 0
        last = self._last
        lists = grouped.column("sequence_list").combine_chunks()
        for index, (exchange, symbol) in enumerate(
            zip(
                grouped.column("exchange").to_pylist(),
                grouped.column("symbol").to_pylist(),
                strict=True,
            )
        ):
            sequences = pc.cast(lists[index].values, pa.int64())
            instrument = (exchange, symbol)
            previous = last.get(instrument)
            if previous is None:
                previous = sequences[0].as_py()
                sequences = sequences[1:]
            if len(sequences) == 0:
                last[instrument] = previous
                continue
            # Running maximum before each row: the highest sequence seen so far.
            seen = pc.cumulative_max(
                pa.concat_arrays([pa.array([previous], pa.int64()), sequences])
            )
            before = seen[:-1]
            advanced = pc.greater(sequences, before)
            out_of_order += len(sequences) - pc.sum(advanced).as_py()
            jumped = pc.and_(advanced, pc.greater(sequences, pc.add(before, 1)))
            gaps += pc.sum(jumped).as_py()
            last[instrument] = seen[-1].as_py()
        return SequenceReport(gaps, out_of_order)
