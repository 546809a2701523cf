"""`k2 maintain` on either engine: compact, expire snapshots, remove orphan files, per table.

One set of options, two engines: `pyiceberg` runs K2's own compaction (`k2.maintain`) and
orphan removal (`k2.orphans`) in this process; `spark` runs Iceberg's procedures
(`k2.engines.spark.maintain`) on a Spark master, acting as the catalog's maintain principal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from k2.catalog import load_catalog
from k2.engines import Engine
from k2.maintain import CompactionPolicy, compact, expire_snapshots
from k2.orphans import DEFAULT_ORPHAN_AGE, remove_orphan_files
from k2.query.scan import load_table
from k2.settings import CatalogPrincipal, Endpoints

Say = Callable[[str], None]


@dataclass(frozen=True)
class MaintainOptions:
    """What a maintenance pass does; `None` skips a step."""

    policy: CompactionPolicy = field(default_factory=CompactionPolicy)
    expire_older_than: timedelta | None = timedelta(hours=24)
    retain_last: int = 10
    orphan_older_than: timedelta | None = DEFAULT_ORPHAN_AGE


def maintain_tables(
    endpoints: Endpoints,
    identifiers: Sequence[tuple[str, str]],
    options: MaintainOptions,
    *,
    engine: Engine = Engine.PYICEBERG,
    master: str | None = None,
    say: Say = print,
) -> None:
    """Maintain each table in turn with `engine` (`master`: the Spark master URL)."""
    if engine is Engine.SPARK:
        _with_spark(endpoints, identifiers, options, master, say)
        return
    catalog = load_catalog(endpoints, CatalogPrincipal.MAINTAIN)
    for identifier in identifiers:
        table = load_table(catalog, identifier)
        report = compact(table, options.policy)
        committed = [p for p in report.partitions if p.committed]
        say(
            f"{report.table}: {len(committed)} partition(s) compacted,"
            f" {report.rewritten_files} small files rewritten"
            f" into {sum(p.files_after for p in committed)}"
        )
        if options.expire_older_than is not None:
            expired = expire_snapshots(
                table, older_than=options.expire_older_than, retain_last=options.retain_last
            )
            say(f"{report.table}: {expired} snapshot(s) expired")
        if options.orphan_older_than is not None:
            orphans = remove_orphan_files(table, older_than=options.orphan_older_than)
            say(
                f"{report.table}: {len(orphans.orphans)} orphan file(s) removed"
                f" ({orphans.kept_young} unreferenced but younger than the guard, kept)"
            )


def _with_spark(
    endpoints: Endpoints,
    identifiers: Sequence[tuple[str, str]],
    options: MaintainOptions,
    master: str | None,
    say: Say,
) -> None:
    # Imported here: pyspark is an optional extra, and the pyiceberg path must not need it.
    from k2.engines.spark import SparkSettings, running_session, session
    from k2.engines.spark import maintain as spark_maintain

    # A session already running in this process (a notebook, a test) is its owner's to stop;
    # Spark keeps one JVM per process, so `session` returns it rather than a second one.
    owned = running_session() is None
    settings = SparkSettings(master=master) if master else SparkSettings()
    spark = session(endpoints, CatalogPrincipal.MAINTAIN, settings)
    try:
        for identifier in identifiers:
            name = ".".join(identifier)
            rewrite = spark_maintain.rewrite_data_files(spark, identifier, options.policy)
            say(
                f"{name}: {rewrite.rewritten_files} small files rewritten"
                f" into {rewrite.added_files} (Spark, sorted by the table's sort order,"
                f" attempt {rewrite.attempts})"
            )
            if options.expire_older_than is not None:
                freed = spark_maintain.expire_snapshots(
                    spark,
                    identifier,
                    older_than=options.expire_older_than,
                    retain_last=options.retain_last,
                )
                say(f"{name}: snapshots expired, {freed} data file(s) freed")
            if options.orphan_older_than is not None:
                orphans = spark_maintain.remove_orphan_files(
                    spark, identifier, older_than=options.orphan_older_than
                )
                say(f"{name}: {len(orphans)} orphan file(s) removed")
    finally:
        if owned:
            spark.stop()
