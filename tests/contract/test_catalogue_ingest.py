"""Each dataset's ingest facts (identity, validation rules, DLQ budget) come from the
catalogue only: they load as declared, a bad one is refused naming file and key, and a
worker of a dataset without them refuses to start."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from k2.contracts.catalogue import load_catalogue
from k2.errors import ContractError
from k2.ingest.config import IngestSettings
from k2.ingest.metrics import IngestMetrics
from k2.ingest.validator import Validator
from k2.ingest.worker import IngestWorker

from .test_catalogue import _edited


def test_ingest_facts_come_from_the_catalogue() -> None:
    catalogue = load_catalogue()
    trades = catalogue.dataset("trades").ingest_spec()
    assert trades.identity == "trade_id"
    assert [r.reason for r in trades.validation] == [
        "empty_trade_id",
        "empty_exchange",
        "empty_symbol",
        "implausible_event_time",
        "empty_currency",
        "non_positive_price",
        "non_positive_size",
    ]
    assert (trades.dlq_budget.max_ratio, trades.dlq_budget.window) == (0.5, 10_000)
    reference = catalogue.dataset("reference_data").ingest_spec()
    assert reference.identity == "event_time"
    assert "valid_to_before_valid_from" in [r.reason for r in reference.validation]
    validator = Validator.for_dataset(catalogue.dataset("quotes"), 0, 0)
    assert "non_positive_ask_size" in validator.reasons


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"ingest.identity": "tradeid"}, "ingest.identity: unknown field 'tradeid'"),
        (
            {"ingest.validation": [{"positive": "prize"}]},
            "ingest.validation: non_positive_prize: unknown field 'prize'",
        ),
        (
            {"ingest.validation": [{"positive": "price", "non_empty": "symbol"}]},
            "a rule names exactly one of",
        ),
        ({"ingest.validation": []}, "ingest.validation"),
        ({"ingest.dlq_budget": {"max_ratio": 0.5}}, "ingest.dlq_budget.window"),
    ],
)
def test_bad_ingest_entries_name_file_and_key(
    tmp_path: Path, edit: dict[str, object], message: str
) -> None:
    path = _edited(tmp_path, edit)
    with pytest.raises(ContractError) as raised:
        load_catalogue(path)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)


def test_a_worker_of_a_dataset_without_ingest_facts_refuses_to_start() -> None:
    dataset = load_catalogue().dataset("trades").model_copy(update={"ingest": None})
    with pytest.raises(ContractError, match="no `ingest` section"):
        IngestWorker(
            dataset,
            source=None,  # type: ignore[arg-type]  # never reached: refused before wiring
            decoder=None,  # type: ignore[arg-type]
            sink=None,  # type: ignore[arg-type]
            dlq=None,  # type: ignore[arg-type]
            metrics=IngestMetrics("trades", CollectorRegistry()),
            settings=IngestSettings(),
        )
