"""The main job end to end: ASX files → `k2 replay asx` → real ingest workers → Iceberg.

Rows per (symbol, Sydney date) and their content equal the source files exactly; a second
replay of the same files adds nothing (identity dedup against the table), while every
content-identical distinct trade stays.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pyiceberg.catalog import Catalog
from typer.testing import CliRunner

from k2.children import k2_command, stop
from k2.cli.main import app
from k2.contracts.catalogue import Catalogue
from k2.demo.progress import end_offsets, table_counts, topic_progress
from k2.replay.asx import AsxSource, Dataset
from k2.replay.bad_rows import BadRowReport
from k2.settings import Endpoints

from .test_replay_kafka import _prefix

pytestmark = pytest.mark.integration

SYDNEY = ZoneInfo("Australia/Sydney")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TABLES = ("trades", "quotes", "reference_data")


@pytest.fixture
def workers(stack: Endpoints, prefixed: Catalogue) -> Iterator[None]:
    """One real `k2 ingest run` per table, as a deployment runs them."""
    procs = [
        subprocess.Popen(
            [*k2_command(), "ingest", "run", "--table", table, "--prefix", _prefix(prefixed)],
            env={**os.environ, **stack.as_env()},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for table in TABLES
    ]
    try:
        yield
    finally:
        for proc in procs:
            stop(proc)


def _replay(stack: Endpoints, prefixed: Catalogue, data_dir: Path) -> None:
    args = ["replay", "asx", "--data-dir", str(data_dir), "--prefix", _prefix(prefixed)]
    result = CliRunner().invoke(app, args, env=stack.as_env())
    assert result.exit_code == 0, result.output


def _wait_committed(stack: Endpoints, iceberg: Catalog, prefixed: Catalogue) -> None:
    """Until every table's recorded offsets reach the end of its topic."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        done = True
        for name in TABLES:
            dataset = prefixed.dataset(name)
            ends = end_offsets(stack.kafka_bootstrap_servers, dataset.topic.name)
            table = iceberg.load_table(dataset.table_identifier)
            done = done and topic_progress(table, dataset.topic.name, ends).caught_up
        if done:
            return
        time.sleep(1)
    pytest.fail("ingest did not commit every record within 180 s")


def _source_trades(data_dir: Path) -> list[dict[str, Any]]:
    source = AsxSource(data_dir)
    out: list[dict[str, Any]] = []
    for market_file in source.market_files(Dataset.TRADES):
        out.extend(dict(r) for r in source.trades(market_file, BadRowReport()))
    return out


def _by_symbol_day(rows: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter(
        (r["symbol"], r["event_time"].astimezone(SYDNEY).date().isoformat()) for r in rows
    )


def _content(rows: list[dict[str, Any]]) -> set[tuple[str, str, Decimal, Decimal, int]]:
    """Identity plus the values that are money and time, compared exactly."""
    return {
        (
            r["trade_id"],
            r["symbol"],
            r["price"],
            r["size"],
            (r["event_time"] - EPOCH) // timedelta(microseconds=1),
        )
        for r in rows
    }


def test_replay_lands_exactly_and_a_second_replay_adds_nothing(
    stack: Endpoints,
    prefixed: Catalogue,
    iceberg: Catalog,
    small_data_dir: Path,
    workers: None,
) -> None:
    source = _source_trades(small_data_dir)
    # Real content-identical distinct trades exist in this subset and must all be kept.
    same_content = Counter((r["symbol"], r["event_time"], r["price"], r["size"]) for r in source)
    assert any(n > 1 for n in same_content.values())

    _replay(stack, prefixed, small_data_dir)
    _wait_committed(stack, iceberg, prefixed)
    trades = iceberg.load_table(prefixed.dataset("trades").table_identifier)
    landed = trades.scan().to_arrow().to_pylist()
    assert len(landed) == len(source)
    assert _by_symbol_day(landed) == _by_symbol_day(source)
    assert _content(landed) == _content(source)
    quotes = iceberg.load_table(prefixed.dataset("quotes").table_identifier)
    assert quotes.scan().to_arrow().num_rows == 60 + 549
    reference = iceberg.load_table(prefixed.dataset("reference_data").table_identifier)
    assert sorted(reference.scan().to_arrow().column("symbol").to_pylist()) == ["DVN", "MWR"]

    _replay(stack, prefixed, small_data_dir)
    _wait_committed(stack, iceberg, prefixed)
    trades = iceberg.load_table(prefixed.dataset("trades").table_identifier)
    again = trades.scan().to_arrow().to_pylist()
    assert _content(again) == _content(source), "a second replay must add nothing"
    counts = table_counts(trades, prefixed.dataset("trades").topic.name)
    assert counts["consumed"] == 2 * len(source)
    assert counts["written"] == len(source)
    assert counts["dead_lettered"] == len(source)  # every replayed trade, as a duplicate
