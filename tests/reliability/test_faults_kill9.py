"""kill -9 of an ingest worker at random moments over a million-record run: nothing lost or doubled.

The records are produced up front (pre-encoded v2 trades), then one `k2 ingest run` process at
a time consumes them and is killed: at random points of the table's progress, at random times
during start-up (imports, group join, assignment, first batch), and at the commit boundaries
the worker's own fault hook offers (after the DLQ send; after the Iceberg commit, before the
Kafka commit). A last worker finishes the run. The final table must hold every produced
trade_id exactly once, its snapshots' offset ranges must chain per partition, and its
`k2.count.*` properties must reconcile with the produced count.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from k2.settings import Endpoints

from .faults_support import (
    LONG,
    FeedProducer,
    Lake,
    WorkerProcess,
    offset_chain_problems,
    prefixed_lake,
    record_figures,
    stop_all,
    v2_feed,
    verdict,
    wait_until,
)

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

RECORDS = 3_000_000 if LONG else 1_000_000
CYCLES = 60 if LONG else 20
# Small commits, so the kills land before, inside and between many of them.
WORKER = {"max_records": "20000", "max_age_s": "0.5", "max_backoff_s": "2"}
FAULTS = ("after-iceberg-commit", "after-dlq-send")


def _plan(rng: random.Random) -> list[tuple[str, float]]:
    """CYCLES kills: (kind, parameter), progress kills in increasing order of the run."""
    startup = max(2, CYCLES // 7)
    faults = max(2, CYCLES // 7)
    progress = CYCLES - startup - faults
    points = sorted(rng.uniform(0.02, 0.9) * RECORDS for _ in range(progress))
    others = [("startup", rng.uniform(0.2, 4.0)) for _ in range(startup)]
    others += [(FAULTS[i % len(FAULTS)], 0.0) for i in range(faults)]
    plan = [("progress", p) for p in points]
    for kind in others:
        plan.insert(rng.randrange(len(plan) + 1), kind)
    return plan


def _progressed(lake: Lake, worker: WorkerProcess, records: float) -> Callable[[], bool]:
    return lambda: lake.consumed() >= records or not worker.alive()


@pytest.mark.timeout(3600 if LONG else 900)
def test_kill9_at_random_moments_over_a_million_records(stack: Endpoints, tmp_path: Path) -> None:
    began = time.monotonic()
    seed = int(os.environ.get("K2_RELIABILITY_SEED", random.randrange(2**32)))
    rng = random.Random(seed)  # a test schedule, not secrets
    workers: list[WorkerProcess] = []
    with prefixed_lake(stack, "k9") as lake:
        feed = v2_feed(lake, uuid.uuid4().hex[:8], RECORDS)
        producer = FeedProducer(lake)
        producer.all_at_once(feed)
        assert not producer.failed, producer.failed[:5]
        expected = set(feed.ids)
        del feed
        produced_s = time.monotonic() - began

        kills: Counter[str] = Counter()
        mid_run = 0
        for cycle, (kind, parameter) in enumerate(_plan(rng)):
            log = tmp_path / f"worker-{cycle:03d}.log"
            if kind in FAULTS:
                worker = WorkerProcess(lake, log, WORKER, metrics=False, fault=kind)
                workers.append(worker)
                code = worker.proc.wait(300)
                assert code == 137, f"fault {kind}: exit {code}, see {log}"
            else:
                worker = WorkerProcess(lake, log, WORKER, metrics=False)
                workers.append(worker)
                if kind == "startup":
                    time.sleep(parameter)
                else:
                    progressed = _progressed(lake, worker, parameter)
                    wait_until(progressed, 600, f"table progress past {parameter:.0f} records")
                    time.sleep(rng.uniform(0.0, 1.0))
                assert worker.alive(), f"worker died by itself: see {log}"
                worker.kill9()
            kills[kind] += 1
            mid_run += lake.consumed() < RECORDS

        last = WorkerProcess(lake, tmp_path / "worker-last.log", WORKER, metrics=False)
        workers.append(last)
        try:
            wait_until(lambda: lake.consumed() >= RECORDS, 900, f"{RECORDS} records committed")
            assert last.stop() == 0, f"see {last.log_file}"
        finally:
            stop_all(workers)

        result = verdict(lake, expected)
        counts = lake.counts()
        chain = offset_chain_problems(lake)
        record_figures(
            "kill9_random_moments",
            seed=seed,
            cycles_survived=sum(kills.values()),
            kills_by_kind=dict(kills),
            kills_mid_run=mid_run,
            table_counts=counts,
            offset_chain_problems=len(chain),
            produce_s=round(produced_s, 1),
            wall_s=round(time.monotonic() - began, 1),
            **result.figures(),
        )
        assert result.lost == 0, result.examples
        assert result.duplicated == 0, result.examples
        assert result.unexpected == 0, result.examples
        assert result.rows == RECORDS
        assert counts == {"consumed": RECORDS, "written": RECORDS, "dead_lettered": 0}
        assert not chain, chain[:5]
        assert sum(kills.values()) >= CYCLES
        assert mid_run >= CYCLES - 1, "most kills must land before the run completed"
