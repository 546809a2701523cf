"""`k2 maintain --engine spark`: Iceberg's own Spark procedures on K2's tables.

The same promises as the pyiceberg path (`k2.maintain`), kept by Iceberg itself:
`rewrite_data_files` commits a `replace` snapshot of exactly the files it read (concurrent
appends are kept; the catalog's maintain principal may commit nothing else), with the `sort`
strategy and no explicit order, i.e. the table's own sort order (symbol, event_time). K2's
`k2.offset.*`/`k2.count.*` table properties are not part of a rewrite, so they stay as ingest
left them. `expire_snapshots` keeps the newest `retain_last` snapshots; `remove_orphan_files`
deletes only unreferenced files older than the age guard.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from k2.engines.spark.config import SPARK_CATALOG, table_name
from k2.maintain import CompactionPolicy, MaintenanceError

log = logging.getLogger(__name__)

_COMMIT_FAILED = "org.apache.iceberg.exceptions.CommitFailedException"


class CommitConflictError(MaintenanceError):
    """A concurrent commit (ingest) moved the table's head under a Spark rewrite."""


if TYPE_CHECKING:
    from pyspark.sql import Row, SparkSession


@dataclass(frozen=True)
class SparkRewrite:
    """What one `rewrite_data_files` call did."""

    rewritten_files: int
    added_files: int
    rewritten_bytes: int
    attempts: int


def _table_arg(identifier: tuple[str, str]) -> str:
    # Procedures take the table as a string literal relative to the catalog they are called in.
    return ".".join(f"`{p}`" for p in identifier).replace("'", "''")


def _timestamp(at: datetime) -> str:
    # The session time zone is UTC (config.spark_conf), so a UTC literal means that instant.
    return at.astimezone(UTC).strftime("TIMESTAMP '%Y-%m-%d %H:%M:%S.%f'")


def _call(spark: SparkSession, procedure: str, args: str) -> Row:
    """The one result row of a procedure that returns counts."""
    return _collect(spark, procedure, args)[0]


def rewrite_data_files(
    spark: SparkSession, identifier: tuple[str, str], policy: CompactionPolicy
) -> SparkRewrite:
    """Compact small files per partition, sorted by the table's sort order.

    An ingest commit landing while the rewrite runs is absorbed by Iceberg's own commit retry
    (it re-validates that the rewritten files are still live; appends never conflict). A table
    whose `commit.retry.num-retries` is 0 (K2 set that on tables before `k2.commits`; unset it
    with `ALTER TABLE ... UNSET TBLPROPERTIES`) fails on each such commit: the rewrite is then
    run again on the new head, up to `policy.max_attempts` times; a failed attempt commits
    nothing and its files are left for orphan removal. One commit for all groups (no partial
    progress): a lost race must fail loudly here, where partial progress would only log it.
    """
    options = {
        "min-input-files": str(policy.min_files),
        # Files below this size are candidates, as in K2's own planner (`small_file_bytes`).
        "min-file-size-bytes": str(policy.small_file_bytes),
    }
    option_map = ", ".join(f"'{k}', '{v}'" for k, v in options.items())
    args = f"table => '{_table_arg(identifier)}', strategy => 'sort', options => map({option_map})"
    for attempt in range(1, policy.max_attempts + 1):
        try:
            row = _call(spark, "rewrite_data_files", args)
        except CommitConflictError:
            log.info("Spark rewrite lost a commit race with ingest, running it again (%d)", attempt)
            time.sleep(min(0.05 * attempt, 1.0))
            continue
        return SparkRewrite(
            rewritten_files=int(row["rewritten_data_files_count"]),
            added_files=int(row["added_data_files_count"]),
            rewritten_bytes=int(row["rewritten_bytes_count"]),
            attempts=attempt,
        )
    raise MaintenanceError(
        f"{policy.max_attempts} commit conflicts in a row compacting {'.'.join(identifier)}"
    )


def expire_snapshots(
    spark: SparkSession,
    identifier: tuple[str, str],
    *,
    older_than: timedelta,
    retain_last: int,
    now: datetime | None = None,
) -> int:
    """Expire snapshots older than `older_than` beyond the newest `retain_last`; how many data
    files that freed (Iceberg deletes files only the expired snapshots referenced)."""
    if retain_last < 1:
        raise MaintenanceError("retain_last must be at least 1 (the current snapshot)")
    cutoff = (now or datetime.now(UTC)) - older_than
    row = _call(
        spark,
        "expire_snapshots",
        f"table => '{_table_arg(identifier)}', older_than => {_timestamp(cutoff)},"
        f" retain_last => {retain_last}",
    )
    return int(row["deleted_data_files_count"])


def remove_orphan_files(
    spark: SparkSession,
    identifier: tuple[str, str],
    *,
    older_than: timedelta,
    now: datetime | None = None,
) -> list[str]:
    """Delete files under the table's location that no metadata references and that are older
    than `older_than` (the guard for files an in-flight commit has written but not committed
    yet); returns their paths. Listed through S3FileIO (prefix listing): no Hadoop S3A.

    Iceberg's action, not its `remove_orphan_files` procedure: the procedure refuses a guard
    under 24 hours, and K2's guard is the caller's (`--orphan-older-than-hours`).
    """
    from py4j.protocol import Py4JError  # type: ignore[import-untyped]  # pyspark's own bridge

    cutoff = (now or datetime.now(UTC)) - older_than
    jvm = spark._jvm  # py4j: the action API has no SQL or Python face
    if jvm is None:
        raise MaintenanceError("the Spark session has no JVM (stopped?)")
    jspark = spark._jsparkSession
    try:
        table = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(
            jspark, table_name(identifier)
        )
        result = (
            jvm.org.apache.iceberg.spark.actions.SparkActions.get(jspark)
            .deleteOrphanFiles(table)
            .olderThan(int(cutoff.timestamp() * 1000))
            .usePrefixListing(True)
            .execute()
        )
    except Py4JError as e:
        raise MaintenanceError(
            f"Spark orphan removal failed on {table_name(identifier)}: {e}"
        ) from e
    locations = result.orphanFileLocations().iterator()
    removed: list[str] = []
    while locations.hasNext():
        removed.append(str(locations.next()))
    return sorted(removed)


def _collect(spark: SparkSession, procedure: str, args: str) -> list[Row]:
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException  # optional extra

    try:
        return spark.sql(f"CALL {SPARK_CATALOG}.system.{procedure}({args})").collect()
    except (PySparkException, Py4JError) as e:
        # Iceberg's own exceptions reach Python unconverted (Py4JJavaError), named in the text.
        if _COMMIT_FAILED in str(e):
            raise CommitConflictError(f"Spark {procedure} lost a commit race: {e}") from e
        raise MaintenanceError(f"Spark {procedure} failed: {e}") from e
