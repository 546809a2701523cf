"""One measured engine job, run in its own process by `k2.bench.engines` (so its peak memory,
JVM included, is its own): `python -m k2.bench.engine_job ENGINE JOB PREFIX`.

Jobs: `scan` (every trade read + five-minute OHLCV bars of every symbol and day) and `compact`
(trades and quotes compacted, sorted by the table's sort order). Prints one JSON line:
`start_s` (catalog or Spark session ready), `work_s`, and what was read or rewritten.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any
from zoneinfo import ZoneInfo

from k2.catalog import load_catalog
from k2.contracts.catalogue import load_catalogue
from k2.engines import Engine
from k2.maintain import CompactionPolicy, compact
from k2.query.ohlcv import Interval, bars
from k2.settings import CatalogPrincipal, Endpoints

SYDNEY = ZoneInfo("Australia/Sydney")
POLICY = CompactionPolicy(min_files=2)


def _pyiceberg(job: str, prefix: str, endpoints: Endpoints) -> dict[str, Any]:
    began = time.perf_counter()
    catalogue = load_catalogue().with_prefix(prefix)
    catalog = load_catalog(endpoints, CatalogPrincipal.MAINTAIN)
    ready = time.perf_counter()
    if job == "scan":
        trades = catalog.load_table(catalogue.dataset("trades").table_identifier).scan().to_arrow()
        bar_count = 0
        for symbol in sorted(set(trades["symbol"].to_pylist())):
            mine = trades.filter(trades["symbol"].to_numpy(zero_copy_only=False) == symbol)
            bar_count += len(bars(mine, Interval.FIVE_MINUTES, SYDNEY))
        out: dict[str, Any] = {"rows": trades.num_rows, "bars": bar_count}
    else:
        rewritten = 0
        for name in ("trades", "quotes"):
            table = catalog.load_table(catalogue.dataset(name).table_identifier)
            rewritten += compact(table, POLICY).rewritten_files
        out = {"rewritten_files": rewritten}
    return {"start_s": ready - began, "work_s": time.perf_counter() - ready, **out}


def _spark(job: str, prefix: str, endpoints: Endpoints) -> dict[str, Any]:
    from k2.engines.spark import SparkSettings, session, table_name
    from k2.engines.spark.maintain import rewrite_data_files

    began = time.perf_counter()
    catalogue = load_catalogue().with_prefix(prefix)
    spark = session(endpoints, CatalogPrincipal.MAINTAIN, SparkSettings(driver_memory="2g"))
    ready = time.perf_counter()
    if job == "scan":
        trades = table_name(catalogue.dataset("trades").table_identifier)
        # Table names come from K2's catalogue, never from input: no injection (S608).
        rows = spark.sql(f"SELECT count(*) AS n FROM {trades}").first()  # noqa: S608
        order = "struct(event_time, venue_sequence)"
        # Sydney's offset is whole hours, so UTC five-minute windows are Sydney's too.
        bar_count = spark.sql(
            "SELECT count(*) AS n FROM"  # noqa: S608
            " (SELECT symbol, window(event_time, '5 minutes'),"
            f" min_by(price, {order}), max(price), min(price), max_by(price, {order}),"
            f" sum(size), sum(price * size), count(*) FROM {trades} GROUP BY 1, 2)"
        ).first()
        out: dict[str, Any] = {
            "rows": rows["n"] if rows else 0,
            "bars": bar_count["n"] if bar_count else 0,
        }
    else:
        rewritten = 0
        for name in ("trades", "quotes"):
            identifier = catalogue.dataset(name).table_identifier
            rewritten += rewrite_data_files(spark, identifier, POLICY).rewritten_files
        out = {"rewritten_files": rewritten}
    work = time.perf_counter() - ready
    spark.stop()
    return {"start_s": ready - began, "work_s": work, **out}


def main(argv: list[str]) -> None:
    engine, job, prefix = Engine(argv[0]), argv[1], argv[2]
    endpoints = Endpoints()  # from the K2_* variables
    run = _spark if engine is Engine.SPARK else _pyiceberg
    print(json.dumps(run(job, prefix, endpoints)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
