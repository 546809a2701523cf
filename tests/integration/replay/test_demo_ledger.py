"""The demo reconciles what its own run published: a busy table passes, a loss or a duplicate
of one of its records fails, and so does a consumed record neither written nor dead-lettered."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.catalog import Catalog

from k2.contracts.catalogue import Catalogue
from k2.demo.ledger import RunLedger, reconcile
from k2.demo.progress import table_counts
from k2.generate import TRADES, GeneratorConfig, SyntheticMarket
from k2.ingest.sink import COUNT_PREFIX

from .tables import append, asx_trades

pytestmark = pytest.mark.integration


class Collected:
    """The replay's `Sink`: records kept in memory instead of sent (no Kafka needed here)."""

    def __init__(self) -> None:
        self.records: list[Mapping[str, Any]] = []

    def publish(self, dataset_name: str, record: Mapping[str, Any]) -> None:
        self.records.append(record)


def _counts(topic: str, consumed: int, written: int, dead: int) -> dict[str, str]:
    """Cumulative k2.count.* properties of partition 0, as ingest writes them."""
    key = f"{COUNT_PREFIX}{topic}.0."
    return {
        key + "consumed": str(consumed),
        key + "written": str(written),
        key + "dead_lettered": str(dead),
    }


def test_the_demo_reconciles_its_own_records_on_a_busy_table(
    iceberg: Catalog, prefixed: Catalogue, asx_data_dir: Path
) -> None:
    dataset = prefixed.dataset("trades")
    table = iceberg.load_table(dataset.table_identifier)
    topic = dataset.topic.name
    # Another producer was there first (`k2 generate`), and keeps writing during the run.
    others = [
        dict(r) for d, r in SyntheticMarket(GeneratorConfig(symbols=3)).take(400) if d == TRADES
    ]
    append(table, others[:100], _counts(topic, 100, 100, 0))
    before = table_counts(table, topic)

    collected = Collected()
    ledger = RunLedger(collected)
    mine = [t for t in asx_trades(asx_data_dir, "DVN") if "-20140310-" in t["trade_id"]]
    for record in mine:
        ledger.publish(TRADES, record)
    assert collected.records == mine  # forwarded unchanged, in order

    # Ingest has written all but one of the run's records (and the others' as they came).
    consumed = 100 + len(mine) + len(others[100:])
    append(table, mine[:-1] + others[100:], _counts(topic, consumed, consumed - 1, 1))
    lost = reconcile(table, topic, TRADES, ledger, before)
    assert (lost.published, lost.found, lost.missing, lost.duplicated) == (
        len(mine),
        len(mine) - 1,
        1,
        0,
    )
    assert not lost.reconciled

    # The last one arrives: the run reconciles, though the table holds far more than it.
    append(table, mine[-1:], _counts(topic, consumed, consumed, 0))
    whole = reconcile(table, topic, TRADES, ledger, before)
    assert (whole.missing, whole.duplicated) == (0, 0)
    assert whole.delta("consumed") == len(mine) + len(others[100:]) > whole.published
    assert whole.reconciled
    assert table.scan().to_arrow().num_rows > whole.published

    # One of the run's records written twice: a duplicate, loudly.
    append(table, mine[:1], _counts(topic, consumed + 1, consumed + 1, 0))
    twice = reconcile(table, topic, TRADES, ledger, before)
    assert (twice.missing, twice.duplicated) == (0, 1)
    assert not twice.reconciled


def test_a_consumed_record_neither_written_nor_dead_lettered_fails(
    iceberg: Catalog, prefixed: Catalogue, asx_data_dir: Path
) -> None:
    dataset = prefixed.dataset("trades")
    table = iceberg.load_table(dataset.table_identifier)
    topic = dataset.topic.name
    ledger = RunLedger(Collected())
    mine = asx_trades(asx_data_dir, "MWR")
    for record in mine:
        ledger.publish(TRADES, record)

    append(table, mine, _counts(topic, len(mine) + 1, len(mine), 0))
    outcome = reconcile(table, topic, TRADES, ledger, Counter())

    assert (outcome.missing, outcome.duplicated) == (0, 0)
    assert outcome.delta("consumed") == outcome.delta("written") + 1
    assert not outcome.reconciled
