"""`k2 maintain` against a real table while appends (with offsets, as ingest does) run."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException

from k2.contracts.catalogue import Catalogue
from k2.maintain import CompactionPolicy, compact, expire_snapshots, plan_compaction, row_count
from k2.query.errors import UnknownSnapshotError
from k2.query.service import query_rows
from k2.query.time_range import TimeRange
from k2.replay.records import TradeRecord

from .tables import append, asx_trades

pytestmark = pytest.mark.integration

BATCH = 150
OFFSET_KEY = "k2.offset.trades.0"
COMMIT_INTERVAL_S = 0.5


def test_compaction_during_appends_loses_and_duplicates_nothing(
    iceberg: Catalog, prefixed: Catalogue, asx_data_dir: Path
) -> None:
    identifier = prefixed.dataset("trades").table_identifier
    table = iceberg.load_table(identifier)
    rows = [t for t in asx_trades(asx_data_dir, "BHP") if t["trade_id"].split("-")[2] == "20140310"]
    batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
    early, late = batches[:20], batches[20:]
    for n, batch in enumerate(early, start=1):
        append(table, batch, {OFFSET_KEY: str(n * BATCH)})
    table.refresh()
    files_before = len(list(table.scan().plan_files()))
    first_snapshot = table.snapshots()[0].snapshot_id

    # Ingest keeps appending (own table handle, commits conflicts by retrying) while we compact.
    writer_table = iceberg.load_table(identifier)
    errors: list[BaseException] = []

    def commit_with_retry(n: int, batch: list[TradeRecord]) -> None:
        for _attempt in range(50):
            writer_table.refresh()
            try:
                append(writer_table, batch, {OFFSET_KEY: str(n * BATCH)})
            except CommitFailedException:
                continue
            return
        raise AssertionError("ingest could not commit")

    def ingest() -> None:
        try:
            for n, batch in enumerate(late, start=len(early) + 1):
                commit_with_retry(n, batch)
                time.sleep(COMMIT_INTERVAL_S)  # ingest commits a batch at a time, not back to back
        except BaseException as e:  # surfaced in the main thread
            errors.append(e)

    writer = threading.Thread(target=ingest)
    writer.start()
    report = compact(table, CompactionPolicy(min_files=2))
    writer.join()
    assert not errors, errors
    assert report.rewritten_files > 0

    table.refresh()
    assert row_count(table) == len(rows)
    ids = table.scan(selected_fields=("trade_id",)).to_arrow()["trade_id"].to_pylist()
    assert sorted(ids) == sorted(t["trade_id"] for t in rows)  # nothing lost, nothing doubled
    assert table.properties[OFFSET_KEY] == str(len(batches) * BATCH)  # offsets survived
    assert len(list(table.scan().plan_files())) < files_before + len(late)

    # A second pass compacts what the concurrent appends left behind, then nothing is left.
    compact(table, CompactionPolicy(min_files=2))
    table.refresh()
    assert plan_compaction(table, CompactionPolicy(min_files=2)) == []
    assert row_count(table) == len(rows)

    # Expiry keeps the current state and makes old snapshots unreachable for time travel.
    expired = expire_snapshots(table, older_than=timedelta(0), retain_last=1)
    assert expired > 0
    table.refresh()
    assert len(table.snapshots()) == 1
    assert row_count(table) == len(rows)
    assert table.properties[OFFSET_KEY] == str(len(batches) * BATCH)
    day = TimeRange.parse("2014-03-10T00:00+11:00", "2014-03-11T00:00+11:00", ZoneInfo("UTC"))
    with pytest.raises(UnknownSnapshotError):
        query_rows(iceberg, prefixed, "trades", day, symbol="BHP", as_of=str(first_snapshot))
    assert query_rows(iceberg, prefixed, "trades", day, symbol="BHP").num_rows == len(rows)
