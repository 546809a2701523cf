"""Crashes and rebalances against the local stack: no loss, no duplicates (by identity)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Env, kill9, wait_for

pytestmark = pytest.mark.integration


def _assert_exactly(env: Env, expected: set[str]) -> None:
    ids = [r["trade_id"] for r in env.rows()]
    duplicated = [i for i, n in Counter(ids).items() if n > 1]
    assert not duplicated, f"duplicates: {duplicated[:5]}"
    assert set(ids) == expected, f"missing: {sorted(expected - set(ids))[:5]}"


def _consumed(env: Env) -> int:
    return env.counts()["consumed"]


def test_kill9_mid_run_then_restart(env: Env, tmp_path: Path) -> None:
    total = 6_000
    env.produce([env.trade(n) for n in range(total)], version=1)
    # Small batches so the kill lands between and inside many commits.
    first = env.spawn(tmp_path / "w1.log", max_records="300", poll_batch="100")
    try:
        wait_for(lambda: _consumed(env) > 0, 60)
    finally:
        kill9(first)
    assert _consumed(env) < total, "the first worker finished before the kill: make it smaller"
    second = env.spawn(tmp_path / "w2.log")
    try:
        wait_for(lambda: _consumed(env) >= total, 90)
    finally:
        kill9(second)
    _assert_exactly(env, {f"T{n}" for n in range(total)})
    assert env.counts() == {"consumed": total, "written": total, "dead_lettered": 0}


@pytest.mark.parametrize("fault", ["after-iceberg-commit", "after-dlq-send"])
def test_crash_at_commit_boundaries_then_restart(env: Env, tmp_path: Path, fault: str) -> None:
    good = [env.trade(n) for n in range(1_000)]
    env.produce(good, version=2, raw=[b"not avro", None])
    total = len(good) + 2
    crashing = env.spawn(tmp_path / "crash.log", fault=fault)
    assert crashing.wait(90) == 137
    before = env.counts()
    if fault == "after-iceberg-commit":
        assert before["consumed"] > 0  # committed to Iceberg, never to the group
    else:
        assert before["consumed"] == 0  # dead letters durable, table untouched
    restarted = env.spawn(tmp_path / "restart.log")
    try:
        wait_for(lambda: _consumed(env) >= total, 90)
    finally:
        kill9(restarted)
    _assert_exactly(env, {f"T{n}" for n in range(1_000)})
    assert env.counts() == {"consumed": total, "written": 1_000, "dead_lettered": 2}


def test_two_workers_rebalancing_write_no_duplicates(env: Env, running: Callable) -> None:
    batches = 12
    per_batch = 500
    stop = threading.Event()

    def produce() -> None:
        for b in range(batches):
            env.produce([env.trade(n) for n in range(b * per_batch, (b + 1) * per_batch)], 1)
            time.sleep(0.3)
        stop.set()

    producer = threading.Thread(target=produce)
    producer.start()
    first = env.worker(max_records=400, poll_batch=200)
    running(first)
    wait_for(lambda: _consumed(env) > 0, 60)
    second = env.worker(max_records=400, poll_batch=200)
    running(second)  # joins the group: partitions move while records flow
    time.sleep(1.5)
    first.stop()  # leaves the group: everything moves to the second worker
    producer.join(60)
    total = batches * per_batch
    wait_for(lambda: _consumed(env) >= total, 90)
    _assert_exactly(env, {f"T{n}" for n in range(total)})
