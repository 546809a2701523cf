"""Every K2 producer writes acks=all with idempotence: the settings they are all built from.

Replays, `k2 generate`, the Locust user and the benchmarks' producers build theirs from
`ProducerTuning` (which has no knob for either); dead letters from `dlq_producer_config`. On the
cluster profile (RF 3, min ISR 2) that is what makes a broker's death lose and duplicate
nothing (tests/reliability/test_cluster_failover.py proves it under kill -9).
"""

from __future__ import annotations

import dataclasses

import pytest

from k2.ingest.dlq import dlq_producer_config
from k2.replay.producer import ProducerTuning


@pytest.mark.parametrize(
    "tuning",
    [ProducerTuning(), ProducerTuning(linger_ms=0, batch_size=1, compression="none")],
)
def test_every_tuning_is_acks_all_and_idempotent(tuning: ProducerTuning) -> None:
    settings = tuning.settings()
    assert settings["acks"] == "all"
    assert settings["enable.idempotence"] is True


def test_durability_is_not_a_tuning_knob() -> None:
    knobs = {field.name for field in dataclasses.fields(ProducerTuning)}
    assert not {"acks", "enable_idempotence", "idempotence"} & knobs


def test_dead_letters_are_acks_all_and_idempotent() -> None:
    config = dlq_producer_config()
    assert config["acks"] == "all"
    assert config["enable.idempotence"] is True
