"""The Iceberg sink: rows and the offsets they cover land in one atomic commit.

Per partition the next offset lives in a table property `k2.offset.<topic>.<partition>`,
set in the same transaction as the append (STACK.md: such properties change atomically with
the append and keys of different writers accumulate). pyiceberg's silent commit retry is
off for the sink's own commits (`k2.commits.single_attempt`; not on the table, so other
engines keep theirs) because a stale writer's rebased append would land; instead, on CommitFailedException the sink refreshes, re-checks for each partition that the
recorded offset is still where the batch starts, and retries (still owner) or drops it.

The Parquet files are written once, before the first attempt (`k2.ingest.datafiles`): the
optimistic-concurrency window is then only refresh → check → metadata commit, and a retry
after a conflict re-uses the files (rewritten only when a partition was dropped meanwhile or
the partition spec changed).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, CommitStateUnknownException
from pyiceberg.expressions import And, BooleanExpression, GreaterThanOrEqual, In, LessThan, Or
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.table import Table

from k2.commits import single_attempt
from k2.ingest.batcher import PartitionBatch, PendingBatch
from k2.ingest.datafiles import WrittenFiles, write_data_files
from k2.ingest.dedup import US_PER_DAY
from k2.ingest.errors import IngestError
from k2.ingest.schemas import WriterSchema
from k2.ingest.source import TopicPartitionKey

log = logging.getLogger(__name__)

OFFSET_PREFIX = "k2.offset."
COUNT_PREFIX = "k2.count."
SUMMARY_OFFSETS = "k2.offsets"
SUMMARY_CONSUMED = "k2.records.consumed"
SUMMARY_WRITTEN = "k2.records.written"
SUMMARY_DEAD = "k2.records.dead-lettered"
SUMMARY_WRITER = "k2.writer"


def offset_property(tp: TopicPartitionKey) -> str:
    """Table property holding the next offset of `tp`."""
    return f"{OFFSET_PREFIX}{tp[0]}.{tp[1]}"


def count_property(tp: TopicPartitionKey, kind: str) -> str:
    """Table property holding a cumulative count (`consumed`, `written`, `dead_lettered`)."""
    return f"{COUNT_PREFIX}{tp[0]}.{tp[1]}.{kind}"


def recorded_offsets(table: Table, topic: str) -> dict[TopicPartitionKey, int]:
    """Next offsets recorded in the table for `topic`'s partitions."""
    prefix = f"{OFFSET_PREFIX}{topic}."
    found: dict[TopicPartitionKey, int] = {}
    for key, value in table.properties.items():
        if key.startswith(prefix) and key[len(prefix) :].isdigit():
            found[(topic, int(key[len(prefix) :]))] = int(value)
    return found


@dataclass
class CommitOutcome:
    """Which partitions were committed, which were dropped (owned by someone else now)."""

    committed: dict[TopicPartitionKey, PartitionBatch] = field(default_factory=dict)
    dropped: dict[TopicPartitionKey, int | None] = field(default_factory=dict)
    conflicts: int = 0
    snapshot_id: int | None = None


class IcebergSink:
    """Appends pending batches to one table."""

    def __init__(
        self,
        catalog: Catalog,
        identifier: tuple[str, str],
        writer_id: str,
        max_attempts: int,
        unique: Collection[str] = (),
    ) -> None:
        self._catalog = catalog
        self._unique = unique  # columns that get no Parquet dictionary (k2.ingest.datafiles)
        self._identifier = identifier
        self._writer_id = writer_id
        self._max_attempts = max_attempts
        self._table: Table | None = None
        self._known_fields: set[str] = set()

    def preload(self) -> None:
        """Load the table ahead of the first assignment (which needs its offsets).

        Called while the consumer joins its group in librdkafka's threads, so that the load
        overlaps the join instead of following it. A failure is only logged: the assignment
        loads the table again, where a dependency that is down is retried.
        """
        try:
            self.table()
        except Exception as e:
            log.info("table %s not preloaded: %r", self._identifier, e)

    def table(self) -> Table:
        """The table, loaded once and refreshed before each commit."""
        if self._table is None:
            self._table = self._catalog.load_table(self._identifier)
        return self._table

    def close(self) -> None:
        """Close the REST catalog's HTTP session (pyiceberg offers no public close)."""
        session = getattr(self._catalog, "_session", None)
        if session is not None:
            session.close()

    def recorded_offsets(self, topic: str) -> dict[TopicPartitionKey, int]:
        """The table's offsets for `topic` (fresh)."""
        table = self.table()
        table.refresh()
        return recorded_offsets(table, topic)

    def identities(self, days: Mapping[int, Sequence[str]], id_column: str) -> pa.Table:
        """Identity columns of the committed rows of `days`' symbols (a pruned scan, fresh).

        A table object of its own: the loop calls this while the committer thread holds
        `self.table()` between its ownership check and its commit."""
        table = self._catalog.load_table(self._identifier)
        columns = tuple(dict.fromkeys(("exchange", "symbol", id_column, "event_time")))
        if table.current_snapshot() is None:
            return table.schema().select(*columns).as_arrow().empty_table()
        parts: list[BooleanExpression] = [
            And(
                In(term="symbol", literals=set(symbols)),
                GreaterThanOrEqual(term="event_time", value=day * US_PER_DAY),
                LessThan(term="event_time", value=(day + 1) * US_PER_DAY),
            )
            for day, symbols in days.items()
        ]
        return table.scan(row_filter=reduce(Or, parts), selected_fields=columns).to_arrow()

    def required_columns(self) -> frozenset[str]:
        """Columns the table declares required (a null there cannot be written)."""
        return frozenset(f.name for f in self.table().schema().fields if f.required)

    def commit(self, pending: PendingBatch) -> CommitOutcome:
        """Commit `pending` (or the part of it this writer still owns)."""
        outcome = CommitOutcome()
        partitions = dict(pending.partitions)
        table = self.table()
        # Columns of newer writers first: the files carry the table's field ids.
        self._evolve(table, pending.writers())
        written = self._write(table, partitions)
        for _attempt in range(self._max_attempts):
            table.refresh()
            partitions = self._still_owned(table, partitions, outcome)
            if not partitions:
                return outcome
            if not written.reusable(frozenset(partitions), table.spec().spec_id):
                self._evolve(table, PendingBatch(partitions).writers())
                written = self._write(table, partitions)
            try:
                outcome.snapshot_id = self._commit_files(table, partitions, written)
            except CommitFailedException:
                outcome.conflicts += 1
                log.info("commit conflict on %s, re-checking ownership", self._identifier)
                continue
            except CommitStateUnknownException:
                outcome.conflicts += 1
                table.refresh()
                if self._landed(table, partitions):
                    outcome.committed = partitions
                    return outcome
                continue
            outcome.committed = partitions
            return outcome
        raise IngestError(f"{self._identifier}: {self._max_attempts} commit conflicts in a row")

    def _still_owned(
        self,
        table: Table,
        partitions: dict[TopicPartitionKey, PartitionBatch],
        outcome: CommitOutcome,
    ) -> dict[TopicPartitionKey, PartitionBatch]:
        kept = {}
        for tp, batch in partitions.items():
            recorded = table.properties.get(offset_property(tp))
            recorded_offset = None if recorded is None else int(recorded)
            # Equal, None included: a batch that starts past a table with no offset yet follows
            # one that never committed (its rows would be skipped, not merely repeated).
            if recorded_offset == batch.start:
                kept[tp] = batch
            else:
                log.warning(
                    "dropping batch of %s: table records offset %s, batch starts at %s",
                    tp,
                    recorded_offset,
                    batch.start,
                )
                outcome.dropped[tp] = recorded_offset
        return kept

    def _landed(self, table: Table, partitions: dict[TopicPartitionKey, PartitionBatch]) -> bool:
        return all(
            table.properties.get(offset_property(tp)) == str(b.end) for tp, b in partitions.items()
        )

    def _evolve(self, table: Table, writers: list[WriterSchema]) -> None:
        """Add columns of newer writer schemas before their first rows are written."""
        if not self._known_fields:
            self._known_fields = {f.name for f in table.schema().fields}
        for writer in writers:
            missing = set(writer.arrow.names) - self._known_fields
            if not missing:
                continue
            log.info(
                "evolving %s with %s (schema id %s)",
                self._identifier,
                sorted(missing),
                writer.schema_id,
            )
            for _attempt in range(self._max_attempts):
                try:
                    with table.update_schema() as update:
                        update.union_by_name(writer.iceberg)
                    break
                except CommitFailedException:
                    table.refresh()
            table.refresh()
            self._known_fields = {f.name for f in table.schema().fields}

    def _write(
        self, table: Table, partitions: dict[TopicPartitionKey, PartitionBatch]
    ) -> WrittenFiles:
        target = schema_to_pyarrow(table.schema(), include_field_ids=False)
        batches = [align(rows, target) for b in partitions.values() for _, rows in b.rows]
        return write_data_files(
            table.metadata,
            table.io,
            pa.Table.from_batches(batches, schema=target),
            frozenset(partitions),
            self._unique,
        )

    def _commit_files(
        self,
        table: Table,
        partitions: dict[TopicPartitionKey, PartitionBatch],
        written: WrittenFiles,
    ) -> int | None:
        properties: dict[str, str] = {}
        for tp, b in partitions.items():
            properties[offset_property(tp)] = str(b.end)
            for kind, delta in (
                ("consumed", b.consumed),
                ("written", b.written),
                ("dead_lettered", b.dead_lettered),
            ):
                key = count_property(tp, kind)
                properties[key] = str(int(table.properties.get(key, "0")) + delta)
        summary = {
            SUMMARY_OFFSETS: json.dumps(
                {f"{t}:{p}": [b.recorded_start, b.end] for (t, p), b in partitions.items()}
            ),
            SUMMARY_CONSUMED: str(sum(b.consumed for b in partitions.values())),
            SUMMARY_WRITTEN: str(sum(b.written for b in partitions.values())),
            SUMMARY_DEAD: str(sum(b.dead_lettered for b in partitions.values())),
            SUMMARY_WRITER: self._writer_id,
        }
        with single_attempt(table).transaction() as tx:
            if written.files:
                with tx.update_snapshot(snapshot_properties=summary).fast_append() as append:
                    for data_file in written.files:
                        append.append_data_file(data_file)
            tx.set_properties(properties)
        snapshot = table.current_snapshot()
        return None if snapshot is None else snapshot.snapshot_id


def align(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    """Resolve a writer's columns to the table by name: cast, or null where the writer lacks one."""
    if batch.schema.equals(target, check_metadata=False):
        return pa.RecordBatch.from_arrays(batch.columns, schema=target)
    names = set(batch.schema.names)
    columns = []
    for target_field in target:
        if target_field.name in names:
            column = batch.column(target_field.name)
            if not column.type.equals(target_field.type):
                column = column.cast(target_field.type)
            columns.append(column)
        else:
            columns.append(pa.nulls(batch.num_rows, type=target_field.type))
    return pa.RecordBatch.from_arrays(columns, schema=target)
