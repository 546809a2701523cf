"""Per (exchange, symbol) venue-sequence gap and out-of-order counters (flags, not rejects)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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
