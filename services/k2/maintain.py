"""Table maintenance: compact small files per partition, expire old snapshots.

Safe while ingest runs, by construction:

* A compaction replaces *named files* with one rewrite of exactly their rows (an Iceberg
  OVERWRITE that deletes those files and adds the new one). It never touches files it did not
  read, so rows appended concurrently are kept. Its commit asserts the branch head it was
  built on; if ingest committed meanwhile (CommitFailedException: K2 makes its commits single
  attempts, `k2.commits.single_attempt`), the same rewrite is re-staged on the refreshed
  table. If one of its source files is gone (another compaction won), pyiceberg refuses the
  delete (ValidationException) and the rewrite is abandoned: nothing is lost or duplicated.
* The exactly-once offsets (`k2.offset.<topic>.<partition>` table properties) are not part
  of a snapshot update, so an overwrite leaves them as they are; the per-commit offset ranges
  in snapshot summaries stay on ingest's snapshots (expiry only removes old ones, and the
  properties hold the cumulative position).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pyiceberg.exceptions import (
    CommitFailedException,
    CommitStateUnknownException,
    ValidationException,
)
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
from pyiceberg.manifest import DataFile
from pyiceberg.table import FileScanTask, Table

from k2.commits import single_attempt
from k2.errors import K2Error

log = logging.getLogger(__name__)

SUMMARY_MAINTENANCE = "k2.maintenance"
SUMMARY_REWRITTEN = "k2.maintenance.rewritten-files"


class MaintenanceError(K2Error):
    """Maintenance could not complete (e.g. too many commit conflicts in a row)."""


@dataclass(frozen=True)
class CompactionPolicy:
    """Which files are small and when a partition is worth rewriting."""

    small_file_bytes: int = 32 * 1024 * 1024
    min_files: int = 4
    max_attempts: int = 60


@dataclass(frozen=True)
class PartitionResult:
    """One partition's compaction."""

    partition: str
    files_before: int
    files_after: int
    rows: int
    attempts: int
    committed: bool


@dataclass
class CompactionReport:
    """What a compaction pass did to one table."""

    table: str
    partitions: list[PartitionResult] = field(default_factory=list)

    @property
    def rewritten_files(self) -> int:
        """Small files replaced by committed rewrites."""
        return sum(p.files_before for p in self.partitions if p.committed)


def _sort_columns(table: Table) -> list[str]:
    schema = table.schema()
    return [schema.find_column_name(f.source_id) or "" for f in table.sort_order().fields]


def plan_compaction(table: Table, policy: CompactionPolicy) -> list[list[FileScanTask]]:
    """Groups of small files of the current spec, one group per partition worth rewriting.

    Files carrying delete files are left alone: rewriting them would have to apply deletes.
    """
    if table.current_snapshot() is None:
        return []
    spec_id = table.spec().spec_id
    groups: dict[str, list[FileScanTask]] = defaultdict(list)
    for task in table.scan().plan_files():
        data = task.file
        if data.spec_id != spec_id or task.delete_files:
            continue
        if data.file_size_in_bytes < policy.small_file_bytes:
            groups[repr(data.partition)].append(task)
    return [tasks for tasks in groups.values() if len(tasks) >= policy.min_files]


def _rewrite(table: Table, tasks: list[FileScanTask]) -> tuple[list[DataFile], int]:
    """Write the rows of `tasks` as new data file(s), sorted by the table's sort order."""
    rows = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue()).to_table(tasks)
    columns = [c for c in _sort_columns(table) if c in rows.column_names]
    if columns:
        rows = rows.sort_by([(c, "ascending") for c in columns])
    files = list(_dataframe_to_data_files(table.metadata, rows, table.io, uuid.uuid4()))
    return files, rows.num_rows


def _landed(table: Table, new_files: list[DataFile]) -> bool:
    table.refresh()
    paths = {f.file_path for f in new_files}
    return paths <= {t.file.file_path for t in table.scan().plan_files()}


def _commit_rewrite(
    table: Table, old: list[DataFile], new: list[DataFile], policy: CompactionPolicy
) -> tuple[bool, int]:
    """(committed, attempts). Re-stages the same rewrite after conflicting concurrent commits."""
    summary = {SUMMARY_MAINTENANCE: "compaction", SUMMARY_REWRITTEN: str(len(old))}
    for attempt in range(1, policy.max_attempts + 1):
        try:
            with (
                single_attempt(table).transaction() as tx,
                tx.update_snapshot(summary).overwrite() as rewrite,
            ):
                for data_file in old:
                    rewrite.delete_data_file(data_file)
                for data_file in new:
                    rewrite.append_data_file(data_file)
        except CommitFailedException:
            log.info("compaction conflicted with a concurrent commit, re-staging (%d)", attempt)
            _backoff(attempt)
            table.refresh()
            continue
        except CommitStateUnknownException:
            if _landed(table, new):
                return True, attempt
            continue
        except ValidationException as e:
            # A source file is no longer live (another compaction replaced it): abandon ours.
            log.warning("compaction abandoned: %s", e)
            _delete_quietly(table, new)
            return False, attempt
        return True, attempt
    _delete_quietly(table, new)
    raise MaintenanceError(f"{policy.max_attempts} commit conflicts in a row compacting {old[0]}")


def _backoff(attempt: int) -> None:
    # Ingest commits about once a second, so the gap right after a conflicting commit is the
    # best moment to re-stage: retry almost at once (a little jitter so two maintainers do not
    # collide again), growing only slowly. A long back-off would only aim at the next commit.
    time.sleep(min(0.01 * attempt, 0.2) * random.uniform(0.5, 1.0))  # noqa: S311


def _delete_quietly(table: Table, files: list[DataFile]) -> None:
    for data_file in files:
        try:
            table.io.delete(data_file.file_path)
        except OSError as e:  # an orphan file is harmless; say so and move on
            log.warning("could not delete unused file %s: %s", data_file.file_path, e)


def compact(table: Table, policy: CompactionPolicy | None = None) -> CompactionReport:
    """Rewrite each partition's small files into one, committing partition by partition."""
    policy = policy or CompactionPolicy()
    report = CompactionReport(".".join(table.name()))
    table.refresh()
    for tasks in plan_compaction(table, policy):
        new_files, rows = _rewrite(table, tasks)
        old_files = [t.file for t in tasks]
        committed, attempts = _commit_rewrite(table, old_files, new_files, policy)
        report.partitions.append(
            PartitionResult(
                partition=repr(old_files[0].partition),
                files_before=len(old_files),
                files_after=len(new_files),
                rows=rows,
                attempts=attempts,
                committed=committed,
            )
        )
    return report


def expire_snapshots(
    table: Table,
    *,
    older_than: timedelta,
    retain_last: int = 1,
    max_attempts: int = 60,
    now: datetime | None = None,
) -> int:
    """Expire snapshots older than `older_than`, always keeping the newest `retain_last` and
    every branch/tag head. Returns how many were expired. Data files are not deleted here."""
    if retain_last < 1:
        raise MaintenanceError("retain_last must be at least 1 (the current snapshot)")
    cutoff_ms = int(((now or datetime.now(UTC)) - older_than).timestamp() * 1000)
    for attempt in range(max_attempts):
        table.refresh()
        protected = {ref.snapshot_id for ref in table.refs().values()}
        history = sorted(table.snapshots(), key=lambda s: s.timestamp_ms)
        candidates = [
            s.snapshot_id
            for s in history[: max(len(history) - retain_last, 0)]
            if s.timestamp_ms < cutoff_ms and s.snapshot_id not in protected
        ]
        if not candidates:
            return 0
        try:
            table.maintenance.expire_snapshots().by_ids(candidates).commit()
        except CommitFailedException:
            _backoff(attempt)
            continue
        return len(candidates)
    raise MaintenanceError(f"{max_attempts} commit conflicts in a row expiring snapshots")


def row_count(table: Table) -> int:
    """Live rows of the current snapshot (from manifests, no data read)."""
    return sum(t.file.record_count for t in table.scan().plan_files())


__all__ = [
    "CompactionPolicy",
    "CompactionReport",
    "MaintenanceError",
    "compact",
    "expire_snapshots",
    "plan_compaction",
]
