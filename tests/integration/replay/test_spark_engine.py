"""Spark reads and maintains K2's tables: the same truth as `k2 query`, nothing lost.

One Spark session (`local[2]`, 1 GiB driver) and one replay of the real ASX files through
Kafka and real `k2 ingest run` workers (the demo's pipeline) serve the whole module: a JVM
start costs tens of seconds on two shared cores.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.catalog import Catalog
from typer.testing import CliRunner

from k2.bootstrap import bootstrap_stack
from k2.catalog import load_catalog
from k2.children import k2_command, stop
from k2.cli.main import app
from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.demo.progress import end_offsets, topic_progress
from k2.engines.spark import SparkSettings, session, table_name
from k2.maintain import row_count
from k2.orphans import list_files
from k2.query.ohlcv import Interval, vwap
from k2.query.service import query_ohlcv, query_rows
from k2.query.time_range import TimeRange
from k2.replay.producer import RecordPublisher
from k2.replay.records import TradeRecord
from k2.settings import CatalogPrincipal, Endpoints

from .tables import append, asx_trades
from .test_replay_kafka import _prefix
from .test_replay_to_iceberg import TABLES, _replay, _wait_committed

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = [
    pytest.mark.integration,
    # Heavy (a whole ASX replay and a Spark JVM): cross-engine truth does not depend on the
    # backend, so it runs once, in test:local.
    pytest.mark.heavy,
    pytest.mark.xdist_group("spark"),
    # py4j drops pooled sockets to the Spark JVM without closing them (collected later, when
    # warnings are errors). Only that is ignored, nothing else that is unraisable.
    pytest.mark.filterwarnings(
        r"ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]

SYDNEY = ZoneInfo("Australia/Sydney")
OFFSET_KEY = "k2.offset.trades.0"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def spark(stack: Endpoints) -> Iterator[SparkSession]:
    spark = session(
        stack,
        CatalogPrincipal.MAINTAIN,  # reads as well: maintain has the query principal's rights
        SparkSettings(master="local[2]", driver_memory="1g", shuffle_partitions=2),
    )
    yield spark
    spark.stop()


@pytest.fixture(scope="module")
def admin(stack: Endpoints) -> Catalog:
    return load_catalog(stack, CatalogPrincipal.ADMIN)


@pytest.fixture(scope="module")
def replayed(stack: Endpoints, admin: Catalog, asx_data_dir: Path) -> Catalogue:
    """Every ASX file replayed through Kafka into a prefixed catalogue by real workers."""
    catalogue = load_catalogue().with_prefix(f"t{uuid.uuid4().hex[:10]}_")
    bootstrap_stack(catalogue, stack, catalog=admin)
    workers = [
        subprocess.Popen(
            [*k2_command(), "ingest", "run", "--table", name, "--prefix", _prefix(catalogue)],
            env={**os.environ, **stack.as_env()},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in TABLES
    ]
    try:
        _replay(stack, catalogue, asx_data_dir)
        _wait_committed(stack, admin, catalogue)
    finally:
        for worker in workers:
            stop(worker)
    return catalogue


def _sydney_day(column: str) -> str:
    return f"date_format(from_utc_timestamp({column}, 'Australia/Sydney'), 'yyyy-MM-dd')"


def _per_symbol_day(table: pa.Table) -> dict[tuple[str, str], int]:
    """Rows per (symbol, Sydney date) of an Arrow table, counted by Arrow (no Python rows)."""
    local = table["event_time"].cast(pa.timestamp("us", "Australia/Sydney"))
    keys = pa.table({"symbol": table["symbol"], "day": pc.strftime(local, format="%Y-%m-%d")})
    counted = keys.group_by(["symbol", "day"]).aggregate([("symbol", "count")]).to_pylist()
    return {(r["symbol"], r["day"]): r["symbol_count"] for r in counted}


@pytest.mark.parametrize("dataset", TABLES)
def test_spark_counts_rows_per_symbol_and_sydney_day_like_k2(
    spark: SparkSession, admin: Catalog, replayed: Catalogue, dataset: str
) -> None:
    identifier = replayed.dataset(dataset).table_identifier
    got = {
        (r["symbol"], r["day"]): r["n"]
        for r in spark.sql(
            f"SELECT symbol, {_sydney_day('event_time')} AS day, count(*) AS n"
            f" FROM {table_name(identifier)} GROUP BY 1, 2"
        ).collect()
    }
    rows = admin.load_table(identifier).scan(selected_fields=("symbol", "event_time")).to_arrow()
    assert rows.num_rows, "the replay landed nothing"
    assert got == _per_symbol_day(rows)
    if dataset != "trades":
        return
    # And per (symbol, Sydney day) exactly what `k2 query trades` returns for that window.
    for (symbol, day), n in got.items():
        nxt = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
        window = TimeRange.parse(day, nxt, SYDNEY)
        assert query_rows(admin, replayed, dataset, window, symbol=symbol).num_rows == n


def test_spark_sums_money_exactly_like_k2(
    spark: SparkSession, admin: Catalog, replayed: Catalogue
) -> None:
    identifier = replayed.dataset("trades").table_identifier
    frame = spark.sql(
        "SELECT symbol, sum(price * size) AS notional, sum(size) AS volume"
        f" FROM {table_name(identifier)} GROUP BY symbol"
    )
    notional_type = frame.schema["notional"].dataType
    # decimal(18,8) x decimal(28,8): every one of the 16 places kept, no rounding to fit 38.
    assert notional_type.simpleString() == "decimal(38,16)"
    got = {r["symbol"]: (r["notional"], r["volume"]) for r in frame.collect()}
    expected: dict[str, tuple[Decimal, Decimal]] = {}
    for r in (
        admin.load_table(identifier)
        .scan(selected_fields=("symbol", "price", "size"))
        .to_arrow()
        .to_pylist()
    ):
        notional, volume = expected.get(r["symbol"], (Decimal(0), Decimal(0)))
        expected[r["symbol"]] = (notional + r["price"] * r["size"], volume + r["size"])
    assert got == expected
    assert len(got) == 4  # the four ASX companies


def _scan_metrics(frame: DataFrame) -> dict[str, int]:
    """Iceberg's scan metrics from the executed plan (BatchScanExec), after a collect."""
    plan = frame._jdf.queryExecution().executedPlan()
    if plan.getClass().getSimpleName() == "AdaptiveSparkPlanExec":
        plan = plan.executedPlan()
    found: dict[str, int] = {}
    todo = [plan]
    while todo:
        node = todo.pop()
        name = node.getClass().getSimpleName()
        if "QueryStage" in name:
            todo.append(node.plan())
            continue
        if name == "BatchScanExec":
            metrics = node.metrics().iterator()
            while metrics.hasNext():
                entry = metrics.next()
                found[entry._1()] = found.get(entry._1(), 0) + int(entry._2().value())
        children = node.children()
        todo.extend(children.apply(i) for i in range(children.size()))
    return found


def test_spark_ohlcv_for_bhp_on_10_march_2014_equals_k2_and_prunes_partitions(
    spark: SparkSession, admin: Catalog, replayed: Catalogue
) -> None:
    identifier = replayed.dataset("trades").table_identifier
    window = TimeRange.parse("2014-03-10", "2014-03-11", SYDNEY)
    k2_bars = query_ohlcv(
        admin, replayed, window, symbol="BHP", interval=Interval.FIVE_MINUTES, tz=SYDNEY
    ).to_pylist()
    # Five-minute buckets align the same in UTC and Sydney (a whole-hour offset).
    order = "struct(event_time, venue_sequence)"
    frame = spark.sql(
        "SELECT unix_micros(window(event_time, '5 minutes').start) AS start,"
        f" min_by(price, {order}) AS open, max(price) AS high, min(price) AS low,"
        f" max_by(price, {order}) AS close, sum(size) AS volume,"
        " sum(price * size) AS notional, count(*) AS trades"
        f" FROM {table_name(identifier)}"
        " WHERE symbol = 'BHP'"
        f" AND event_time >= TIMESTAMP '{window.start.isoformat()}'"
        f" AND event_time < TIMESTAMP '{window.end.isoformat()}'"
        " GROUP BY 1 ORDER BY 1"
    )
    spark_bars = frame.collect()
    assert len(k2_bars) > 50  # a full trading day of five-minute bars
    assert [
        (b["open"], b["high"], b["low"], b["close"], b["volume"], b["trades"], b["vwap"])
        for b in k2_bars
    ] == [
        (
            r["open"],
            r["high"],
            r["low"],
            r["close"],
            r["volume"],
            r["trades"],
            vwap(r["notional"], r["volume"]),
        )
        for r in spark_bars
    ]
    assert [(b["bar_start"] - EPOCH) // timedelta(microseconds=1) for b in k2_bars] == [
        r["start"] for r in spark_bars
    ]

    # Partition pruning, from the executed plan: the symbol/day filter reached Iceberg, which
    # skipped manifests/files of other days and buckets.
    plan = frame._jdf.queryExecution().executedPlan().toString()
    assert re.search(r"BatchScan .*filters=.*symbol = 'BHP'.*event_time >=", plan), plan
    metrics = _scan_metrics(frame)
    total_files = spark.sql(f"SELECT count(*) AS n FROM {table_name(identifier)}.files").first()
    assert total_files is not None
    assert 0 < metrics["resultDataFiles"] < total_files["n"], metrics
    assert metrics["skippedDataFiles"] + metrics["skippedDataManifests"] > 0, metrics


def _wait_rows(iceberg: Catalog, identifier: tuple[str, str], rows: int, what: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if row_count(iceberg.load_table(identifier)) >= rows:
            return
        time.sleep(0.5)
    pytest.fail(f"ingest did not commit {rows} rows within 180 s: {what}")


def test_k2_maintain_with_spark_while_a_live_worker_ingests_loses_and_duplicates_nothing(
    spark: SparkSession,
    stack: Endpoints,
    iceberg: Catalog,
    prefixed: Catalogue,
    asx_data_dir: Path,
    tmp_path: Path,
) -> None:
    dataset = prefixed.dataset("trades")
    identifier = dataset.table_identifier
    trades = asx_trades(asx_data_dir, "BHP")  # five days: one partition per Sydney day
    batches = [trades[i : i + 60] for i in range(0, len(trades), 60)]
    early, late = batches[:12], batches[12:]
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [*k2_command(), "ingest", "run", "--table", "trades", "--prefix", _prefix(prefixed)],
            env={**os.environ, **stack.as_env()},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    publisher = RecordPublisher(stack.kafka_bootstrap_servers, stack.schema_registry_url, prefixed)
    published = 0

    def publish(part: list[TradeRecord]) -> None:
        nonlocal published
        for record in part:
            publisher.publish("trades", record)
        publisher.flush()
        published += len(part)

    try:
        # Small commits first: one file per batch, so the table has something to compact.
        for part in early:
            publish(part)
            _wait_rows(iceberg, identifier, published, "the early batches")
        files_before = len(list(iceberg.load_table(identifier).scan().plan_files()))
        assert files_before >= len(early)

        # The feed goes on (a batch every 0.5 s, the worker commits each) while maintenance
        # runs; a watcher records when the worker's offsets move.
        hurry, stop_watching = threading.Event(), threading.Event()
        moves: list[float] = []
        errors: list[BaseException] = []

        def feed() -> None:
            try:
                for part in late:
                    publish(part)
                    if not hurry.is_set():
                        time.sleep(0.5)
            except BaseException as e:  # surfaced in the main thread
                errors.append(e)

        def watch() -> None:
            last: dict[str, str] = {}
            while not stop_watching.is_set():
                props = iceberg.load_table(identifier).properties
                offsets = {k: v for k, v in props.items() if k.startswith("k2.offset.")}
                if offsets != last:
                    moves.append(time.monotonic())
                    last = offsets
                time.sleep(0.2)

        feeder = threading.Thread(target=feed)
        watcher = threading.Thread(target=watch)
        feeder.start()
        watcher.start()
        started = time.monotonic()
        # The command a user runs (in process: it reuses this module's Spark session).
        result = CliRunner().invoke(
            app,
            [
                "maintain",
                "--engine", "spark",
                "--master", "local[2]",
                "--dataset", "trades",
                "--min-files", "2",
                "--retain-last", "3",
                "--expire-older-than-hours", "0",
                "--no-orphans",
                "--prefix", _prefix(prefixed),
            ],
            env=stack.as_env(),
        )  # fmt: skip
        finished = time.monotonic()
        hurry.set()
        feeder.join()
        assert not errors, errors
        output = " ".join(result.output.split())  # the console wraps long lines
        assert result.exit_code == 0, output
        _wait_rows(iceberg, identifier, len(trades), "every published trade")
        stop_watching.set()
        watcher.join()
    finally:
        publisher.close()
        stop(worker)
    assert published == len(trades)
    during = [at for at in moves if started <= at <= finished]
    assert during, f"the worker committed nothing while maintenance ran: {output}"
    rewritten = re.search(r"(\d+) small files rewritten into (\d+)", output)
    assert rewritten is not None, output
    assert int(rewritten[1]) >= files_before > int(rewritten[2]) > 0

    table = iceberg.load_table(identifier)
    ids = table.scan(selected_fields=("trade_id",)).to_arrow()["trade_id"].to_pylist()
    assert len(ids) == len(set(ids)) == row_count(table)  # nothing duplicated
    assert sorted(ids) == sorted(t["trade_id"] for t in trades)  # nothing lost
    ends = end_offsets(stack.kafka_bootstrap_servers, dataset.topic.name)
    assert topic_progress(table, dataset.topic.name, ends).caught_up  # offsets intact
    # Spark reads the same rows back, compacted files and all.
    count = spark.sql(f"SELECT count(*) AS n FROM {table_name(identifier)}").first()
    assert count is not None and count["n"] == len(trades), log.read_text()[-2000:]


def test_spark_removes_old_orphans_and_keeps_fresh_ones(
    spark: SparkSession, iceberg: Catalog, prefixed: Catalogue, asx_data_dir: Path
) -> None:
    from k2.engines.spark.maintain import remove_orphan_files

    identifier = prefixed.dataset("trades").table_identifier
    table = iceberg.load_table(identifier)
    append(table, asx_trades(asx_data_dir, "DVN"), {OFFSET_KEY: "1"})

    def write(name: str) -> str:
        path = f"{table.location()}/data/{name}-{uuid.uuid4().hex}.parquet"
        with table.io.new_output(path).create() as out:
            out.write(b"not referenced by any snapshot")
        return path

    old = write("old")
    time.sleep(2.5)  # S3 keeps modification times to the second
    fresh = write("fresh")
    stamps = {f.path: f.modified for f in list_files(table)}
    assert stamps[old] < stamps[fresh]
    now = stamps[fresh] + timedelta(seconds=5)
    guard = now - (stamps[old] + (stamps[fresh] - stamps[old]) / 2)

    removed = remove_orphan_files(spark, identifier, older_than=guard, now=now)

    assert removed == [old]
    remaining = {f.path for f in list_files(table)}
    assert fresh in remaining and old not in remaining
    assert set(stamps) - {old} <= remaining  # every referenced file kept
    table.refresh()
    assert table.scan().to_arrow().num_rows == len(asx_trades(asx_data_dir, "DVN"))
