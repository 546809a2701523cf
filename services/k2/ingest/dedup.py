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
held in polars columns, never as Python objects, with the hashes also in a set
(`k2.ingest.hashset`). A batch is checked in vectorised steps: its hashes against the set
(O(batch), whatever the store's size); only when some are present (a replay, or a collision),
the stored rows with those hashes, then exact key equality against those candidates; and exact
first occurrence within the batch. A hash only narrows the search: a duplicate is always an
exact key match, so a hash collision can never drop a real record.

Exact at any volume, bounded memory: the unit the cache loads, keeps and forgets is a whole
table partition, never a part of one. A partition is either absent (its identities are read
from the table the next time one of its records arrives) or held complete (every identity
committed to it plus the ones pending in this worker). Forgetting part of a partition while
it stays "loaded" is what let a replay older than the old two-generation window through
(issue 13: 9,984 duplicates written with a 50,000 window). Past `capacity` identities a trim
forgets the least recently used partitions whole; partitions the open (uncommitted) batch
touched are kept, since the table does not hold their new identities yet. Memory is therefore
at most `capacity` plus the identities of the partitions the open batch touches (one batch of
a day that interleaves every symbol touches the whole day: ~45 bytes per identity).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import polars as pl
import pyarrow as pa

from k2.ingest.hashset import HashSet

US_PER_DAY = 86_400_000_000
# (days since the epoch of event_time, symbol): the table's partitioning, minus the bucket.
PartitionKey = tuple[int, str]
# Loads the rows of the given days' symbols with columns exchange, symbol, <id>, event_time.
Loader = Callable[[Mapping[int, Sequence[str]]], pa.Table]
_SEPARATOR = "\x1f"
_SEED = 0x4B32  # any fixed seed: hashes are compared only within this process
# A store appended per batch is re-laid out in one piece past this many chunks.
_MAX_CHUNKS = 64
_KEY_SCHEMA = {"h": pl.UInt64, "key": pl.String, "p": pl.UInt64}


def identity_frame(rows: pa.Table | pa.RecordBatch, id_column: str) -> pl.DataFrame:
    """Columns `day`, `symbol`, `key` (the exact identity), `h` (its hash) and `p` (the hash
    of its partition, (day, symbol)), per row."""
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
    partition = pl.concat_str(
        [day.cast(pl.String), pl.col("symbol").cast(pl.String).fill_null("")],
        separator=_SEPARATOR,
    )
    return frame.select(
        day.alias("day"),
        pl.col("symbol").cast(pl.String),
        key.alias("key"),
        partition.hash(seed=_SEED).alias("p"),
    ).with_columns(pl.col("key").hash(seed=_SEED).alias("h"))


class _Keys:
    """Identities as (hash, exact key, partition hash) rows, appended per batch, with a hash
    set in front: a batch is compared with the stored rows only when some of its hashes are
    among them (a replay), never by a pass over the whole store per batch."""

    __slots__ = ("frame", "hashes")

    def __init__(self) -> None:
        self.frame = pl.DataFrame(schema=_KEY_SCHEMA)
        self.hashes = HashSet()

    def __len__(self) -> int:
        return self.frame.height

    def add(self, keys: pl.DataFrame) -> None:
        if keys.height:
            self.frame = pl.concat([self.frame, keys], rechunk=False)
            if self.frame.n_chunks() > _MAX_CHUNKS:
                self.frame = self.frame.rechunk()
            self.hashes.add(keys.get_column("h").to_numpy())

    def candidates(self, hashes: pl.Series) -> pl.Series:
        """Stored keys whose hash is among `hashes` (a superset of the batch's matches)."""
        present = hashes.filter(pl.Series(self.hashes.contains(hashes.to_numpy())))
        if not present.len():
            return pl.Series("key", [], dtype=pl.String)
        return self.frame.filter(pl.col("h").is_in(present.implode())).get_column("key")

    def sizes(self) -> dict[int, int]:
        """Identities held per partition hash."""
        counts = self.frame.group_by("p").len()
        return dict(
            zip(counts.get_column("p").to_list(), counts.get_column("len").to_list(), strict=True)
        )

    def drop(self, partitions: set[int]) -> None:
        """Forget every identity of `partitions` (partition hashes)."""
        self.frame = self.frame.filter(~pl.col("p").is_in(list(partitions))).rechunk()
        self.hashes = HashSet(self.frame.get_column("h").to_numpy())

    def nbytes(self) -> int:
        """Bytes held: the rows (polars' estimate) and the hash set."""
        return int(self.frame.estimated_size()) + self.hashes.nbytes


class TableIdentities:
    """Identities already in (or about to be written to) one table."""

    def __init__(self, capacity: int, id_column: str, loader: Loader) -> None:
        self._capacity = capacity
        self._id_column = id_column
        self._loader = loader
        # Loaded partitions by partition hash (a hash names one partition or, on a collision,
        # several: they are then kept and forgotten together, which stays exact).
        self._loaded: dict[int, set[PartitionKey]] = {}
        self._used: dict[int, int] = {}  # partition hash -> epoch of its last record
        self._epoch = 0  # moves on each time the open batch is handed to the committer
        self._keys = _Keys()
        self.loads = 0  # table scans made (tests and metrics of the cache's cost)
        self.evicted = 0  # partitions forgotten by trims

    def __len__(self) -> int:
        return len(self._keys)

    def store_bytes(self) -> int:
        """Bytes the held identities take (polars' estimate)."""
        return self._keys.nbytes()

    @property
    def id_column(self) -> str:
        """The column identifying a record within its (exchange, symbol)."""
        return self._id_column

    def clear(self) -> None:
        """Forget everything: ownership may have changed, reload from the table."""
        self._loaded.clear()
        self._used.clear()
        self._keys = _Keys()

    def seal(self) -> None:
        """The open batch went to the committer: what it touched is committed at the next trim."""
        self._epoch += 1

    def duplicates(self, rows: pa.RecordBatch) -> list[int]:
        """Row numbers of `rows` whose identity is already known; remembers the others.

        Within `rows`, the first occurrence of an identity is kept and later ones are
        duplicates.
        """
        if self._capacity == 0 or rows.num_rows == 0:
            return []
        frame = identity_frame(rows, self._id_column)
        self._load_missing(frame)
        known = self._keys.candidates(frame.get_column("h"))
        dup = frame.select(
            ~pl.col("key").is_first_distinct() | pl.col("key").is_in(known.implode())
        ).to_series()
        self._keys.add(frame.filter(~dup).select(*_KEY_SCHEMA))
        return dup.arg_true().to_list()

    def trim(self) -> None:
        """Back under capacity (call after a commit, with none in flight): forget the least
        recently used partitions whole, never one the open batch touched."""
        if len(self) <= self._capacity:
            return
        sizes = self._keys.sizes()
        excess = len(self) - self._capacity
        evict: set[int] = set()
        for p in sorted(self._used, key=self._used.__getitem__):
            if excess <= 0 or self._used[p] >= self._epoch:
                break
            evict.add(p)
            excess -= sizes.get(p, 0)
        if not evict:
            return
        self._keys.drop(evict)
        for p in evict:
            self.evicted += len(self._loaded.pop(p, ()))
            self._used.pop(p, None)

    def _load_missing(self, frame: pl.DataFrame) -> None:
        missing: dict[int, list[str]] = {}
        found: list[tuple[int, PartitionKey]] = []
        for p, day, symbol in frame.select("p", "day", "symbol").unique().iter_rows():
            self._used[p] = self._epoch
            if (day, symbol) not in self._loaded.get(p, ()):
                missing.setdefault(day, []).append(symbol)
                found.append((p, (day, symbol)))
        if not missing:
            return
        loaded = self._loader(missing)  # may raise (retried): nothing is marked loaded yet
        self.loads += 1
        for p, pk in found:
            self._loaded.setdefault(p, set()).add(pk)
        if loaded.num_rows:
            keys = identity_frame(loaded, self._id_column).select(*_KEY_SCHEMA)
            self._keys.add(keys.unique(subset="key"))
