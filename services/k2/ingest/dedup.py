"""Identity dedup that survives restarts and replays: (day, exchange, symbol, trade_id / quote_id).

Never content-based: two trades with equal time, price and size are real and both kept.

Identities are loaded per table partition, (day(event_time), symbol). The first time a batch
touches a partition not loaded yet, that partition's identities are read from the Iceberg
table itself (a scan pruned by day + bucket(symbol), identity columns only), so a new worker
process, a second `k2 replay` or a rebalance finds every identity already committed. A symbol
lives in one Kafka partition, so only one worker adds to its identities at a time; whenever
ownership may have changed (assignment, revocation, a dropped batch) the cache is cleared and
reloaded from the table, which holds everything committed.

Layout, for speed and memory (the check runs on every consumed record). Every identity held
is a 64-bit hash of its exact key (day, symbol, exchange, id: typed columns, nulls distinct
from empty strings) in a hash set (`k2.ingest.hashset`), plus (hash, partition hash) for
forgetting partitions: ~40 bytes. Exact keys are held only where a comparison may need them
and the table cannot give them: identities not committed yet (the open batch and the commit
in flight), and every identity of a partition that has had a hash hit (a replay) — read from
the table once, then kept complete. A batch is checked in vectorised steps: its hashes against
the set (O(batch), whatever the store's size); only the rows whose hash is present (a replay,
or a collision) are compared by exact key, after their partitions' exact keys are read from
the table if not held; and first occurrence within the batch (exact keys compared only when
some hash repeats). A hash only narrows the search: a duplicate is always an exact key match,
so a collision can never drop a real record. Steady ingest (no replays) holds hashes only: 2M
identities took ~180 MB of a worker's peak RSS with every exact key in memory.

Exact at any volume, bounded memory: the unit the cache loads, keeps and forgets is a whole
table partition, never a part of one. A partition is either absent (its identities are read
from the table the next time one of its records arrives) or held complete (every identity
committed to it plus the ones pending in this worker). Forgetting part of a partition while
it stays "loaded" is what let a replay older than the old two-generation window through
(issue 13: 9,984 duplicates written with a 50,000 window). Past `capacity` identities a trim
forgets the least recently used partitions whole; partitions the open (uncommitted) batch
touched are kept, since the table does not hold their new identities yet. Memory is therefore
at most `capacity` plus the identities of the partitions the open batch touches (one batch of
a day that interleaves every symbol touches the whole day).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import polars as pl
import pyarrow as pa

from k2.ingest.hashset import HashSet

US_PER_DAY = 86_400_000_000
# (days since the epoch of event_time, symbol): the table's partitioning, minus the bucket.
PartitionKey = tuple[int, str]
# Loads the rows of the given days' symbols with columns exchange, symbol, <id>, event_time.
Loader = Callable[[Mapping[int, Sequence[str]]], pa.Table]
_SEED = 0x4B32  # any fixed seed: hashes are compared only within this process
# Per-batch pieces are merged past this many (the merge copies the newest pieces only).
_MAX_CHUNKS = 64
_COMMITTED = -1  # the epoch of exact keys read from the table
_KEY = ["day", "symbol", "exchange", "id"]  # an exact identity, typed
_HELD = ["h", *_KEY, "p", "epoch"]  # what an exact key holds


def identity_frame(rows: pa.Table | pa.RecordBatch, id_column: str) -> pl.DataFrame:
    """Per row: the exact identity as typed columns `day`, `symbol`, `exchange`, `id`; `h`, a
    hash of it; and `p`, a hash of its partition (day, symbol). Hashes of the typed columns,
    not of a key string built per row: ~0.07 vs ~0.15 µs per record (measured, one thread)."""
    names = list(dict.fromkeys(("event_time", "exchange", "symbol", id_column)))
    frame = pl.from_arrow(rows.select(names))
    assert isinstance(frame, pl.DataFrame)  # a table or batch converts to a frame
    ident = pl.col(id_column)
    if frame.schema[id_column].is_temporal():
        ident = ident.to_physical()
    day = pl.col("event_time").to_physical().cast(pl.Int64).fill_null(0) // US_PER_DAY
    return frame.select(
        day.alias("day"),
        pl.col("symbol").cast(pl.String),
        pl.col("exchange").cast(pl.String),
        ident.alias("id"),
    ).with_columns(
        h=pl.struct(_KEY).hash(seed=_SEED),
        p=pl.struct("day", "symbol").hash(seed=_SEED),
    )


def _repeated(frame: pl.DataFrame) -> pl.Series:
    """Rows whose exact identity occurs earlier in `frame`. Equal identities have equal
    hashes, so only when some hash repeats are the exact keys compared."""
    if frame.get_column("h").is_first_distinct().all():
        return pl.Series([False] * frame.height)
    return ~frame.select(pl.struct(_KEY).is_first_distinct()).to_series()


class _Owners:
    """(hash, partition hash) of every identity held, appended per batch: what forgetting a
    partition removes from the hash set."""

    __slots__ = ("_chunks", "_settled", "sizes")

    def __init__(self) -> None:
        self._chunks: list[tuple[np.ndarray, np.ndarray]] = []
        self._settled = 0  # chunks that are merges; later ones are one per batch
        self.sizes: dict[int, int] = {}  # identities held per partition hash

    def __len__(self) -> int:
        return sum(self.sizes.values())

    @property
    def nbytes(self) -> int:
        return sum(h.nbytes + p.nbytes for h, p in self._chunks)

    def add(self, h: np.ndarray, p: pl.Series) -> None:
        if not h.size:
            return
        self._chunks.append((h, p.to_numpy()))
        if len(self._chunks) - self._settled > _MAX_CHUNKS:
            # Merge the per-batch pieces only (merging all would copy everything at once).
            tail = self._chunks[self._settled :]
            merged = (np.concatenate([t[0] for t in tail]), np.concatenate([t[1] for t in tail]))
            self._chunks[self._settled :] = [merged]
            self._settled += 1
        counts = p.value_counts()
        for partition, n in counts.iter_rows():
            self.sizes[partition] = self.sizes.get(partition, 0) + n

    def drop(self, partitions: set[int]) -> np.ndarray:
        """Forget `partitions`; returns the hashes of the identities still held."""
        h, p = self._merged()
        keep = ~np.isin(p, np.fromiter(partitions, dtype=np.uint64, count=len(partitions)))
        self._chunks = [(h[keep], p[keep])]
        self._settled = 1
        for partition in partitions:
            self.sizes.pop(partition, None)
        return self._chunks[0][0]

    def _merged(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._chunks:
            return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint64)
        return (
            np.concatenate([h for h, _ in self._chunks]),
            np.concatenate([p for _, p in self._chunks]),
        )


class _ExactKeys:
    """Exact keys (hash, typed identity, partition hash, epoch): the pending ones and those of
    the exact partitions, appended per batch."""

    __slots__ = ("_frame", "_settled")

    def __init__(self) -> None:
        # Typed like the dataset's identity column: laid out by the first keys added.
        self._frame: pl.DataFrame | None = None
        self._settled = 0  # rows in merged chunks; later rows are one chunk per batch

    @property
    def height(self) -> int:
        return 0 if self._frame is None else self._frame.height

    @property
    def nbytes(self) -> int:
        return 0 if self._frame is None else int(self._frame.estimated_size())

    def add(self, keys: pl.DataFrame) -> None:
        if not keys.height:
            return
        keys = keys.select(_HELD)
        if self._frame is None:
            self._frame = keys
            return
        self._frame = pl.concat([self._frame, keys], rechunk=False)
        if self._frame.n_chunks() > _MAX_CHUNKS:
            # Merge the per-batch chunks only: re-laying out the whole frame would put a
            # second copy of it in memory for a moment.
            tail = self._frame.slice(self._settled).rechunk()
            self._frame = pl.concat([self._frame.slice(0, self._settled), tail], rechunk=False)
            self._settled = self._frame.height

    def known(self, frame: pl.DataFrame, present: pl.Series) -> pl.Series:
        """Which rows of identity frame `frame` (among the `present` ones) have their exact
        key held."""
        mask = np.zeros(frame.height, dtype=bool)
        if self._frame is not None:
            hits = frame.with_row_index("row").filter(present)
            held = self._frame.filter(pl.col("h").is_in(hits.get_column("h").implode()))
            rows = hits.join(held.select(_KEY), on=_KEY, how="semi", nulls_equal=True)
            mask[rows.get_column("row").to_numpy()] = True
        return pl.Series(mask)

    def keep(self, predicate: pl.Expr) -> None:
        if self._frame is not None:
            self._frame = self._frame.filter(predicate).rechunk()
            self._settled = self._frame.height


class TableIdentities:
    """Identities already in (or about to be written to) one table."""

    def __init__(self, capacity: int, id_column: str, loader: Loader) -> None:
        self._capacity = capacity
        self._id_column = id_column
        self._loader = loader
        # Loaded partitions by partition hash (a hash names one partition or, on a collision,
        # several: they are then kept, made exact and forgotten together, which stays exact).
        self._loaded: dict[int, set[PartitionKey]] = {}
        self._exact: set[int] = set()  # partition hashes whose exact keys are all held
        self._used: dict[int, int] = {}  # partition hash -> epoch of its last record
        self._epoch = 0  # moves on each time the open batch is handed to the committer
        self._hashes = HashSet(expected=capacity)
        self._owners = _Owners()
        self._keys = _ExactKeys()
        self.loads = 0  # table scans made (tests and metrics of the cache's cost)
        self.evicted = 0  # partitions forgotten by trims

    def __len__(self) -> int:
        return len(self._owners)

    def store_bytes(self) -> int:
        """Bytes the held identities take: hash set, owners and exact keys."""
        return self._hashes.nbytes + self._owners.nbytes + self._keys.nbytes

    @property
    def exact_keys(self) -> int:
        """Exact keys held (pending identities and those of partitions with a hash hit)."""
        return self._keys.height

    @property
    def id_column(self) -> str:
        """The column identifying a record within its (exchange, symbol)."""
        return self._id_column

    def clear(self) -> None:
        """Forget everything: ownership may have changed, reload from the table."""
        self._loaded.clear()
        self._exact.clear()
        self._used.clear()
        self._hashes = HashSet(expected=self._capacity)
        self._owners = _Owners()
        self._keys = _ExactKeys()

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
        found = self._hashes.contains(frame.get_column("h").to_numpy())
        repeated = _repeated(frame)
        if found.any():
            present = pl.Series(found)
            self._make_exact(frame.filter(present).get_column("p").unique().to_list())
            dup = repeated | self._keys.known(frame, present)
        else:
            dup = repeated
        self._remember(frame.filter(~dup).with_columns(epoch=pl.lit(self._epoch, pl.Int64)))
        return dup.arg_true().to_list()

    def trim(self) -> None:
        """Call after a commit, with none in flight: forget the exact keys the table now holds
        (outside exact partitions); then, over capacity, the least recently used partitions
        whole, never one the open batch touched."""
        self._keys.keep((pl.col("epoch") >= self._epoch) | pl.col("p").is_in(list(self._exact)))
        if len(self) <= self._capacity:
            return
        sizes = self._owners.sizes
        excess = len(self) - self._capacity
        evict: set[int] = set()
        for p in sorted(self._used, key=self._used.__getitem__):
            if excess <= 0 or self._used[p] >= self._epoch:
                break
            evict.add(p)
            excess -= sizes.get(p, 0)
        if not evict:
            return
        self._hashes = HashSet(self._owners.drop(evict), expected=self._capacity)
        self._keys.keep(~pl.col("p").is_in(list(evict)))
        for p in evict:
            self.evicted += len(self._loaded.pop(p, ()))
            self._used.pop(p, None)
            self._exact.discard(p)

    def _remember(self, keys: pl.DataFrame) -> None:
        """New identities (rows of an identity frame with an epoch): hashes, owners, keys."""
        self._hold(keys)
        self._keys.add(keys)

    def _hold(self, keys: pl.DataFrame) -> None:
        """The hashes of `keys` in the set, with their partitions."""
        h = keys.get_column("h").to_numpy()
        self._hashes.add(h)
        self._owners.add(h, keys.get_column("p"))

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
        if not loaded.num_rows:
            return
        keys = self._table_keys(loaded)
        # Partitions this batch replays (some of its hashes are in the table) stay exact now:
        # the comparison that follows needs their keys, and reading them again would cost a
        # second scan.
        replayed = keys.filter(pl.col("h").is_in(frame.get_column("h").implode()))
        exact = set(replayed.get_column("p").unique().to_list())
        self._hold(keys)
        self._exact.update(exact)
        self._keys.add(keys.filter(pl.col("p").is_in(list(exact))))

    def _make_exact(self, partitions: Iterable[int]) -> None:
        """Hold every exact key of `partitions` (partition hashes): read the committed ones
        from the table; the pending ones are held already."""
        wanted = [p for p in partitions if p not in self._exact]
        if not wanted:
            return
        days: dict[int, list[str]] = {}
        for p in wanted:
            for day, symbol in self._loaded.get(p, ()):
                days.setdefault(day, []).append(symbol)
        if days:
            loaded = self._loader(days)  # may raise (retried): nothing changed yet
            self.loads += 1
            if loaded.num_rows:
                self._keys.add(self._table_keys(loaded))
        self._exact.update(wanted)

    def _table_keys(self, loaded: pa.Table) -> pl.DataFrame:
        """The identity frame of rows read from the table, each identity once, committed."""
        keys = identity_frame(loaded, self._id_column).unique(subset=_KEY)
        return keys.with_columns(epoch=pl.lit(_COMMITTED, pl.Int64))
