"""When to flush: the commit policy is data, not code (a frozen dataclass)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CommitPolicy:
    """Flush when any limit is reached: records, raw bytes, or age of the oldest record."""

    max_records: int
    max_bytes: int
    max_age_s: float

    def should_flush(self, records: int, raw_bytes: int, age_s: float) -> bool:
        """True when a pending batch of this size and age must be committed now."""
        if records == 0:
            return False
        return records >= self.max_records or raw_bytes >= self.max_bytes or age_s >= self.max_age_s

    def is_full(self, records: int, raw_bytes: int) -> bool:
        """True when a batch of this size must not grow further (age aside)."""
        return records >= self.max_records or raw_bytes >= self.max_bytes

    def time_left(self, age_s: float) -> float:
        """Seconds until the age limit fires (never negative)."""
        return max(0.0, self.max_age_s - age_s)
