"""Identity dedup that survives restarts and replays: (day, exchange, symbol, trade_id / quote_id).

Never content-based: two trades with equal time, price and size are real and both kept.

Identities are loaded per table partition, (day(event_time), symbol). The first time a batch
touches a partition not loaded yet, that partition's identities are read from the Iceberg
table itself (a scan pruned by day + bucket(symbol), identity columns only), so a new worker
process, a second `k2 replay` or a rebalance finds every identity already committed. A symbol
lives in one Kafka partition, so only one worker adds to its identities at a time; whenever
ownership may have changed (assignment, revocation, a dropped batch) the cache is cleared and
reloaded from the table, which holds everything committed.

Layout, for speed and memory (the check runs on every consumed record): each identity is one
exact key string (day, symbol, exchange, id joined by a unit separator) plus its 64-bit hash,
held in polars columns, never as Python objects. A batch is checked in three vectorised steps:
stored rows whose hash is among the batch's hashes (one pass over the store), then exact key
equality against those candidates only, and exact first occurrence within the batch. A hash
only narrows the search: a duplicate is always an exact key match, so a hash collision can
never drop a real record.

The cache is bounded (`capacity` identities), trimmed only between batches (`trim`, after a
commit), in two generations: a trim over capacity forgets the older generation and starts a
new one. Identities not yet committed at a trim (the open batch's) move to the older
generation and are dropped one trim later at the earliest, after their batch has committed;
what is forgotten is the oldest committed window (dedup is within a bounded window; a restart
reloads everything from the table). Partitions stay loaded across trims (reloading every
symbol's day on each batch once the window filled made freshness fall from ~1 s to 20-35 s);
those of days before yesterday are marked unloaded at a trim and are read again from the
table if a record of theirs ever arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import polars as pl
import pyarrow as pa

US_PER_DAY = 86_400_000_000
# (days since the epoch of event_time, symbol): the table's partitioning, minus the bucket.
PartitionKey = tuple[int, str]
# Loads the rows of the given days' symbols with columns exchange, symbol, <id>, event_time.
Loader = Callable[[Mapping[int, Sequence[str]]], pa.Table]
_SEPARATOR = "\x1f"
_SEED = 0x4B32  # any fixed seed: hashes are compared only within this process
# A store appended per batch is re-laid out in one piece past this many chunks.
_MAX_CHUNKS = 64
_KEY_SCHEMA = {"h": pl.UInt64, "key": pl.String}


def identity_frame(rows: pa.Table | pa.RecordBatch, id_column: str) -> pl.DataFrame:
    """Columns `day`, `symbol`, `key` (the exact identity) and `h` (its hash), per row."""
    names = list(dict.fromkeys(("event_time", "exchange", "symbol", id_column)))
    frame = pl.from_arrow(rows.select(names))
    assert isinstance(frame, pl.DataFrame)  # a table or batch converts to a frame
    ident = pl.col(id_column)
    if frame.schema[id_column].is_temporal():
        ident = ident.to_physical()
    day = pl.col("event_time").to_physical().cast(pl.Int64).fill_null(0) // US_PER_DAY
    key = pl.concat_str(
        [
            day.cast(pl.String),
            pl.col("symbol").cast(pl.String).fill_null(""),
            pl.col("exchange").cast(pl.String).fill_null(""),
            ident.cast(pl.String).fill_null(""),
        ],
        separator=_SEPARATOR,
    )
    return frame.select(
        day.alias("day"), pl.col("symbol").cast(pl.String), key.alias("key")
    ).with_columns(pl.col("key").hash(seed=_SEED).alias("h"))


class _Keys:
    """One generation of identities: (hash, exact key) rows, appended per batch."""

    __slots__ = ("frame",)

    def __init__(self) -> None:
        self.frame = pl.DataFrame(schema=_KEY_SCHEMA)

    def __len__(self) -> int:
        return self.frame.height

    def add(self, keys: pl.DataFrame) -> None:
        if keys.height:
            self.frame = pl.concat([self.frame, keys], rechunk=False)
            if self.frame.n_chunks() > _MAX_CHUNKS:
                self.frame = self.frame.rechunk()

    def candidates(self, hashes: pl.Series) -> pl.Series:
        """Stored keys whose hash is among `hashes` (a superset of the batch's matches)."""
        return self.frame.filter(pl.col("h").is_in(hashes.implode())).get_column("key")


class TableIdentities:
    """Identities already in (or about to be written to) one table."""

    def __init__(self, capacity: int, id_column: str, loader: Loader) -> None:
        self._capacity = capacity
        self._id_column = id_column
        self._loader = loader
        self._loaded: set[PartitionKey] = set()
        self._new = _Keys()
        self._old = _Keys()
        self.loads = 0  # table scans made (tests and metrics of the cache's cost)

    def __len__(self) -> int:
        return len(self._new) + len(self._old)

    @property
    def id_column(self) -> str:
        """The column identifying a record within its (exchange, symbol)."""
        return self._id_column

    def clear(self) -> None:
        """Forget everything: ownership may have changed, reload from the table."""
        self._loaded.clear()
        self._new = _Keys()
        self._old = _Keys()

    def duplicates(self, rows: pa.RecordBatch) -> list[int]:
        """Row numbers of `rows` whose identity is already known; remembers the others.

        Within `rows`, the first occurrence of an identity is kept and later ones are
        duplicates.
        """
        if self._capacity == 0 or rows.num_rows == 0:
            return []
        frame = identity_frame(rows, self._id_column)
        self._load_missing(frame)
        hashes = frame.get_column("h")
        candidates = [g.candidates(hashes) for g in (self._new, self._old) if len(g)]
        known = pl.concat(candidates) if candidates else pl.Series("key", [], pl.String)
        dup = frame.select(
            ~pl.col("key").is_first_distinct() | pl.col("key").is_in(known.implode())
        ).to_series()
        self._new.add(frame.filter(~dup).select(*_KEY_SCHEMA))
        return dup.arg_true().to_list()

    def trim(self) -> None:
        """Back under capacity (call between batches): forget the older generation; mark
        partitions of days before yesterday unloaded."""
        if len(self) <= self._capacity:
            return
        self._old, self._new = self._new, _Keys()
        if self._loaded:
            newest = max(day for day, _symbol in self._loaded)
            self._loaded = {pk for pk in self._loaded if pk[0] >= newest - 1}

    def _load_missing(self, frame: pl.DataFrame) -> None:
        missing: dict[int, list[str]] = {}
        for day, symbol in frame.select("day", "symbol").unique().iter_rows():
            if (day, symbol) not in self._loaded:
                missing.setdefault(day, []).append(symbol)
        if not missing:
            return
        loaded = self._loader(missing)
        self.loads += 1
        for day, symbols in missing.items():
            self._loaded.update((day, symbol) for symbol in symbols)
        if loaded.num_rows:
            keys = identity_frame(loaded, self._id_column).select(*_KEY_SCHEMA)
            self._new.add(keys.unique(subset="key"))
