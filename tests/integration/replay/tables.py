"""Helpers to fill a bootstrapped table directly (no ingest worker) with real ASX trades."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.table import Table

from k2.commits import single_attempt
from k2.replay.asx import AsxSource, Dataset
from k2.replay.bad_rows import BadRowReport
from k2.replay.records import TradeRecord


def asx_trades(data_dir: Path, symbol: str) -> list[TradeRecord]:
    source = AsxSource(data_dir)
    (market_file,) = [f for f in source.market_files(Dataset.TRADES) if f.company.symbol == symbol]
    return list(source.trades(market_file, BadRowReport()))


def append(table: Table, rows: list[TradeRecord], properties: dict[str, str] | None = None) -> int:
    """Append rows (and properties, atomically, in one attempt, as ingest does); returns the new
    snapshot id. A conflict raises CommitFailedException."""
    arrow = pa.Table.from_pylist(
        [dict(r) for r in rows], schema=schema_to_pyarrow(table.schema(), include_field_ids=False)
    )
    with single_attempt(table).transaction() as tx:
        tx.append(arrow)
        if properties:
            tx.set_properties(properties)
    snapshot = table.current_snapshot()
    assert snapshot is not None
    return snapshot.snapshot_id
