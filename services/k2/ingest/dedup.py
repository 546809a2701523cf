"""Identity dedup within a bounded window: (exchange, symbol, trade_id / quote_id).

Never content-based: two trades with equal time, price and size are real and both kept.
Each identity remembers the Kafka position it was first seen at, so re-reading the same
message after a dropped batch or a rebalance is a replay, not a duplicate.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

Identity = tuple[object, ...]
Position = tuple[str, int, int]


class IdentityWindow:
    """Remembers the last `capacity` identities (oldest evicted first)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[Identity, Position] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def duplicates(
        self, identities: Sequence[Identity], positions: Sequence[Position]
    ) -> list[int]:
        """Indexes of identities already seen at another position; remembers the rest."""
        if self._capacity == 0:
            return []
        seen = self._seen
        dups: list[int] = []
        for index, (identity, position) in enumerate(zip(identities, positions, strict=True)):
            first = seen.get(identity)
            if first is None:
                seen[identity] = position
            elif first != position:
                dups.append(index)
        while len(seen) > self._capacity:
            seen.popitem(last=False)
        return dups
