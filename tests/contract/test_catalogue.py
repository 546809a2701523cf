"""The catalogue loads, derives subjects/DLQs, prefixes cleanly and refuses bad entries clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from k2.contracts.catalogue import Compatibility, load_catalogue
from k2.contracts.paths import contracts_dir
from k2.errors import ContractError


def test_catalogue_matches_the_contract() -> None:
    catalogue = load_catalogue()
    trades = catalogue.dataset("trades")
    assert (trades.topic.name, trades.subject, trades.dlq_topic) == (
        "k2.trades",
        "k2.trades-value",
        "k2.trades.dlq",
    )
    assert trades.topic.partitions == 6
    assert trades.replication is None  # the cluster's default.replication.factor
    assert trades.compatibility is Compatibility.BACKWARD_TRANSITIVE
    assert trades.table_identifier == ("market", "trades")
    assert trades.table.sort_order == ("symbol", "event_time")
    assert next((p.source, p.transform) for p in trades.table.partition_spec) == (
        "event_time",
        "day",
    )
    ref = catalogue.dataset("reference_data")
    assert ref.topic.configs()["cleanup.policy"] == "compact" and ref.topic.partitions == 1
    assert ref.record_key({"exchange": "XASX", "symbol": "BHP"}) == "XASX|BHP"
    assert trades.record_key({"symbol": "BHP"}) == "BHP"


def test_prefix_and_replication() -> None:
    catalogue = load_catalogue().with_prefix("t3f9a1_").with_replication(3)
    quotes = catalogue.dataset("quotes")
    assert quotes.topic.name == "t3f9a1_k2.quotes"
    assert quotes.subject == "t3f9a1_k2.quotes-value"
    assert quotes.dlq_topic == "t3f9a1_k2.quotes.dlq"
    assert quotes.table_identifier == ("t3f9a1_market", "quotes")
    assert quotes.replication == 3
    assert catalogue.by_topic("t3f9a1_k2.quotes") == quotes
    with pytest.raises(ContractError, match="invalid prefix"):
        load_catalogue().with_prefix("Bad-")


def _edited(tmp_path: Path, edit: dict[str, object]) -> Path:
    root = tmp_path / "contracts"
    shutil.copytree(contracts_dir(), root)
    path = root / "catalogue.yaml"
    document = yaml.safe_load(path.read_text())
    trades = document["datasets"]["trades"]
    for key, value in edit.items():
        target = trades
        *parents, last = key.split(".")
        for parent in parents:
            target = target[parent]
        target[last] = value
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"schema": "trades_typo"}, "datasets.trades.schema: unknown schema 'trades_typo'"),
        (
            {"table.partition_spec": [{"source": "symbol", "transform": "daily"}]},
            "datasets.trades: table.partition_spec.0.transform: Value error, invalid partition transform 'daily'",
        ),
        (
            {"table.partition_spec": [{"source": "symbol", "transform": "day"}]},
            "datasets.trades.table.partition_spec[0]: transform day cannot apply to symbol",
        ),
        (
            {"table.partition_spec": [{"source": "nope", "transform": "identity"}]},
            "unknown source field 'nope'",
        ),
        ({"table.sort_order": ["symbol", "nope"]}, "table.sort_order: unknown field 'nope'"),
        ({"topic.key": ["instrument_id"]}, "key fields must be required"),
        ({"topic.partitions": 0}, "topic.partitions"),
    ],
)
def test_bad_entries_name_file_and_key(
    tmp_path: Path, edit: dict[str, object], message: str
) -> None:
    path = _edited(tmp_path, edit)
    with pytest.raises(ContractError) as raised:
        load_catalogue(path)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)
