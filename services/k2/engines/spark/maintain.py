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

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from k2.engines.spark.config import SPARK_CATALOG
from k2.maintain import CompactionPolicy, MaintenanceError

if TYPE_CHECKING:
    from pyspark.sql import Row, SparkSession


@dataclass(frozen=True)
class SparkRewrite:
    """What one `rewrite_data_files` call did."""

    rewritten_files: int
    added_files: int
    rewritten_bytes: int


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
    """Compact small files per partition, sorted by the table's sort order."""
    options = {
        "min-input-files": str(policy.min_files),
        # Files below this size are candidates, as in K2's own planner (`small_file_bytes`).
        "min-file-size-bytes": str(policy.small_file_bytes),
        # Commit partition by partition, so a long run conflicts with ingest only briefly and
        # progress is kept when a later group fails.
        "partial-progress.enabled": "true",
    }
    option_map = ", ".join(f"'{k}', '{v}'" for k, v in options.items())
    row = _call(
        spark,
        "rewrite_data_files",
        f"table => '{_table_arg(identifier)}', strategy => 'sort', options => map({option_map})",
    )
    return SparkRewrite(
        rewritten_files=int(row["rewritten_data_files_count"]),
        added_files=int(row["added_data_files_count"]),
        rewritten_bytes=int(row["rewritten_bytes_count"]),
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
    dry_run: bool = False,
) -> list[str]:
    """Delete files under the table's location that no metadata references and that are older
    than `older_than` (the guard for files an in-flight commit has written but not committed
    yet). Returns their paths. Lists through S3FileIO (`prefix_listing`): no Hadoop S3A."""
    cutoff = (now or datetime.now(UTC)) - older_than
    rows = _collect(
        spark,
        "remove_orphan_files",
        f"table => '{_table_arg(identifier)}', older_than => {_timestamp(cutoff)},"
        f" prefix_listing => true, dry_run => {str(dry_run).lower()}",
    )
    return [str(r["orphan_file_location"]) for r in rows]


def _collect(spark: SparkSession, procedure: str, args: str) -> list[Row]:
    from pyspark.errors import PySparkException  # optional extra

    try:
        return spark.sql(f"CALL {SPARK_CATALOG}.system.{procedure}({args})").collect()
    except PySparkException as e:
        raise MaintenanceError(f"Spark {procedure} failed: {e}") from e
