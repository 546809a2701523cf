"""Identity dedup that survives restarts and replays: (exchange, symbol, trade_id / quote_id).

Never content-based: two trades with equal time, price and size are real and both kept.

Identities are remembered per table partition, (day(event_time), symbol). The first time a
batch touches a partition that is not cached, that partition's identities are loaded from the
Iceberg table itself (a scan pruned by day + bucket(symbol), identity columns only), so a new
worker process, a second `k2 replay` or a rebalance finds every identity already committed.
A symbol lives in one Kafka partition, so only one worker adds to its identities at a time;
whenever ownership may have changed (assignment, revocation, a dropped batch) the cache is
cleared and reloaded from the table, which holds everything committed.

The cache is bounded (`capacity` identities), trimmed only between batches (`trim`, after a
commit). Partitions are not evicted to make room: with every symbol trading all day, each
batch then reloaded (a table scan) what the previous trim had evicted, and freshness fell
from ~1 s to 20-35 s once the window filled. Instead each partition keeps its identities in
two generations and a trim, least recently used partitions first, drops older generations
until the cache is back under capacity. Identities not yet committed at a trim (the open
batch's) move to the older generation and are dropped one trim later at the earliest, after
their batch has committed; what a partition forgets is its oldest committed window (dedup is
within a bounded window; a restart reloads everything from the table). Emptied partitions
of days before yesterday are removed (reloaded from the table if ever touched again).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

US_PER_DAY = 86_400_000_000
# (days since the epoch of event_time, symbol): the table's partitioning, minus the bucket.
PartitionKey = tuple[int, str]
# Loads the rows of the given days' symbols with columns exchange, symbol, <id>, event_time.
Loader = Callable[[Mapping[int, Sequence[str]]], pa.Table]
_SEPARATOR = "\x1f"


def identity_keys(rows: pa.Table | pa.RecordBatch, id_column: str) -> pa.Table:
    """Columns `day`, `symbol` and `key` (exchange + id, one string) of `rows`."""
    event_us = pc.cast(rows.column("event_time"), pa.int64())
    day = pc.divide(pc.fill_null(event_us, 0), US_PER_DAY)
    ident = rows.column(id_column)
    if pa.types.is_timestamp(ident.type):
        ident = pc.cast(ident, pa.int64())
    key = pc.binary_join_element_wise(
        pc.cast(rows.column("exchange"), pa.string()), pc.cast(ident, pa.string()), _SEPARATOR
    )
    return pa.table({"day": day, "symbol": rows.column("symbol"), "key": key})


def _grouped(keys: pa.Table) -> list[tuple[PartitionKey, list[str], list[int]]]:
    """Per partition: its keys and their row numbers, in row order."""
    numbered = keys.append_column("row", pa.array(range(keys.num_rows), type=pa.int64()))
    grouped = numbered.group_by(["day", "symbol"], use_threads=False).aggregate(
        [("key", "list"), ("row", "list")]
    )
    return [
        ((int(day), str(symbol)), list(ks), list(rs))
        for day, symbol, ks, rs in zip(
            grouped.column("day").to_pylist(),
            grouped.column("symbol").to_pylist(),
            grouped.column("key_list").to_pylist(),
            grouped.column("row_list").to_pylist(),
            strict=True,
        )
    ]


class _Generations:
    """A partition's identities: added since the last rotation, and the window before it."""

    __slots__ = ("new", "old")

    def __init__(self) -> None:
        self.new: set[str] = set()
        self.old: set[str] = set()

    def __len__(self) -> int:
        return len(self.new) + len(self.old)

    def __contains__(self, key: str) -> bool:
        return key in self.new or key in self.old

    def isdisjoint(self, keys: list[str]) -> bool:
        return self.new.isdisjoint(keys) and self.old.isdisjoint(keys)

    def rotate(self) -> int:
        """Forget the older generation; returns how many identities were forgotten."""
        forgotten = len(self.old)
        self.old, self.new = self.new, set()
        return forgotten


class TableIdentities:
    """Identities already in (or about to be written to) one table, by partition."""

    def __init__(self, capacity: int, id_column: str, loader: Loader) -> None:
        self._capacity = capacity
        self._id_column = id_column
        self._loader = loader
        self._partitions: OrderedDict[PartitionKey, _Generations] = OrderedDict()
        self.loads = 0  # table scans made (tests and metrics of the cache's cost)

    def __len__(self) -> int:
        return sum(len(s) for s in self._partitions.values())

    @property
    def id_column(self) -> str:
        """The column identifying a record within its (exchange, symbol)."""
        return self._id_column

    def clear(self) -> None:
        """Forget everything: ownership may have changed, reload from the table."""
        self._partitions.clear()

    def duplicates(self, rows: pa.RecordBatch) -> list[int]:
        """Row numbers of `rows` whose identity is already known; remembers the others.

        Within `rows`, the first occurrence of an identity is kept and later ones are
        duplicates.
        """
        if self._capacity == 0 or rows.num_rows == 0:
            return []
        groups = _grouped(identity_keys(rows, self._id_column))
        self._load_missing([pk for pk, _, _ in groups])
        dups: list[int] = []
        for pk, keys, numbers in groups:
            known = self._partitions[pk]
            self._partitions.move_to_end(pk)
            if known.isdisjoint(keys) and len(set(keys)) == len(keys):
                known.new.update(keys)  # the common case: all new, no per-row Python
                continue
            for key, number in zip(keys, numbers, strict=True):
                if key in known:
                    dups.append(number)
                else:
                    known.new.add(key)
        dups.sort()
        return dups

    def trim(self) -> None:
        """Back under capacity (call between batches): least recently used partitions first
        drop their older generation; then forget emptied partitions of old days."""
        size = len(self)
        for generations in self._partitions.values():
            if size <= self._capacity:
                break
            size -= generations.rotate()
        if self._partitions:
            newest = max(day for day, _symbol in self._partitions)
            for pk in [
                pk for pk, g in self._partitions.items() if pk[0] < newest - 1 and not len(g)
            ]:
                del self._partitions[pk]

    def _load_missing(self, needed: Sequence[PartitionKey]) -> None:
        missing: dict[int, list[str]] = {}
        for day, symbol in needed:
            if (day, symbol) not in self._partitions:
                missing.setdefault(day, []).append(symbol)
        if not missing:
            return
        loaded = self._loader(missing)
        self.loads += 1
        for day, symbols in missing.items():
            for symbol in symbols:
                self._partitions[(day, symbol)] = _Generations()
        if loaded.num_rows:
            for pk, keys, _rows in _grouped(identity_keys(loaded, self._id_column)):
                if pk in self._partitions:
                    self._partitions[pk].new.update(keys)
