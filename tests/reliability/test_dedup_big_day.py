"""Issue 13: exact identity dedup past any in-memory window, across kill -9.

A day of RECORDS trades (more than the worker's dedup window of 1,000,000 identities) is
ingested; the worker is killed with kill -9; the whole day is published again and a fresh
worker reads it; that one is killed too; then the day's first 100,000 trades are published a
third time with event times an hour later (same day, same ids: a feed handler's resend) and a
third worker reads them. Not one row may be added: every re-sent record is dead-lettered as
`duplicate`, and the table's counts reconcile.

The feed is encoded once (the fast pre-encoded path) and produced twice from memory.
Measured at 3M (load average 15-30 from other work on the 2-core machine): 750 s in all, of
which producing 300 s and reading the all-duplicate replay 237 s (every duplicate goes to
the DLQ, acknowledged, before the commit that passes it).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from k2.delivery import produce_all
from k2.ingest.dedup import US_PER_DAY
from k2.replay.producer import ProducerTuning
from k2.settings import Endpoints

from .faults_support import (
    LONG,
    Lake,
    WorkerProcess,
    prefixed_lake,
    record_figures,
    stop_all,
    v2_feed,
    verdict,
    wait_until,
)

# Heavy: it proves ingest logic, which does not depend on the backend: run once (test:local).
pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.heavy]

RECORDS = 10_000_000 if LONG else 3_000_000
RESENT = 100_000
HOUR_US = 3_600_000_000
# Bounds are liveness bounds on a shared 2-core machine, generous on purpose.
PHASE_S = 900 if LONG else 300


def _produce(lake: Lake, messages: list[tuple[bytes, bytes]]) -> float:
    """Every message, acknowledged (acks=all, idempotent); returns the seconds it took."""
    started = time.monotonic()
    producer = ProducerTuning(linger_ms=50).producer(lake.endpoints.kafka_bootstrap_servers)
    produce_all(producer, lake.dataset.topic.name, messages, timeout_s=300)
    return time.monotonic() - started


def _ingest_until(lake: Lake, tmp_path: Path, name: str, consumed: int) -> tuple[float, int]:
    """Start a worker, wait until the table accounts for `consumed`, kill -9 it."""
    started = time.monotonic()
    worker = WorkerProcess(lake, tmp_path / f"{name}.log", {"max_backoff_s": "2"})
    try:
        wait_until(lambda: lake.consumed() >= consumed, PHASE_S, f"{name}: {consumed} consumed")
        took = time.monotonic() - started
    finally:
        stop_all([worker])
    return took, worker.kill9()


@pytest.mark.timeout(3 * 3600 if LONG else 1500)
def test_a_replayed_big_day_adds_no_row(stack: Endpoints, tmp_path: Path) -> None:
    # Early in the current UTC day: the resend an hour later stays in the same day partition
    # and within the validator's plausible-time bounds.
    base = (time.time_ns() // 1_000) // US_PER_DAY * US_PER_DAY + HOUR_US
    run = uuid.uuid4().hex[:8]
    with prefixed_lake(stack, "dd") as lake:
        began = time.monotonic()
        day = v2_feed(lake, run, RECORDS, base_us=base)
        encoded_s = time.monotonic() - began
        expected = set(day.ids)
        first_s = _produce(lake, day.messages)
        ingest_s, code = _ingest_until(lake, tmp_path, "first", RECORDS)
        assert code == -9
        assert len(lake.trade_ids()) == RECORDS

        replay_s = _produce(lake, day.messages)  # the whole day again
        del day
        dedup_s, code = _ingest_until(lake, tmp_path, "replay", 2 * RECORDS)
        assert code == -9

        resend = v2_feed(lake, run, RESENT, base_us=base + HOUR_US)
        _produce(lake, resend.messages)
        resend_s, _code = _ingest_until(lake, tmp_path, "resend", 2 * RECORDS + RESENT)

        result = verdict(lake, expected)
        counts = lake.counts()
        record_figures(
            "big_day_replay",
            records=RECORDS,
            encode_s=round(encoded_s, 1),
            produce_s=round(first_s, 1),
            ingest_s=round(ingest_s, 1),
            replay_produce_s=round(replay_s, 1),
            replay_ingest_s=round(dedup_s, 1),
            resend_ingest_s=round(resend_s, 1),
            total_s=round(time.monotonic() - began, 1),
            **result.figures(),
            **counts,
        )
        assert (result.rows, result.lost, result.duplicated, result.unexpected) == (
            RECORDS,
            0,
            0,
            0,
        ), result.examples
        assert counts == {
            "consumed": 2 * RECORDS + RESENT,
            "written": RECORDS,
            "dead_lettered": RECORDS + RESENT,
        }
