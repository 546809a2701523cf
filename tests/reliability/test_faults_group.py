"""Consumer-group faults: members joining and leaving mid-run, and a zombie that wakes up late.

Workers are `k2 ingest run` processes in one group (the trades topic has 6 partitions) while a
paced producer keeps offering trades. The verdict is taken from the table: every produced
trade_id exactly once, and per partition the snapshots' offset ranges chain without overlap —
a stale commit by a member that lost its partitions would overlap its successor's range.
"""

from __future__ import annotations

import threading
import time
import uuid
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

RATE = 2_000  # records/s offered while the group changes
SESSION_TIMEOUT_MS = 6_000  # the broker's minimum: a frozen member is evicted soonest
MEMBER = {
    "max_records": "5000",
    "max_age_s": "0.5",
    "max_backoff_s": "2",
    "session_timeout_ms": str(SESSION_TIMEOUT_MS),
}


def _produce_in_background(
    lake: Lake, records: int
) -> tuple[threading.Thread, FeedProducer, set[str]]:
    feed = v2_feed(lake, uuid.uuid4().hex[:8], records)
    producer = FeedProducer(lake)
    thread = threading.Thread(target=producer.paced, args=(feed, RATE), daemon=True)
    thread.start()
    return thread, producer, set(feed.ids)


def _finish(
    lake: Lake, thread: threading.Thread, producer: FeedProducer, expected: set[str]
) -> None:
    thread.join(600)
    assert not thread.is_alive(), "producer did not finish"
    assert not producer.failed, producer.failed[:5]
    assert producer.acked == expected
    wait_until(lambda: lake.consumed() >= len(expected), 600, f"{len(expected)} records committed")


def _wait_started(worker: WorkerProcess) -> None:
    """Until the member has joined the group (its first assignment is logged)."""
    wait_until(lambda: '"assigned"' in worker.log_text(), 180, f"{worker.log_file} assigned")


def _check(lake: Lake, expected: set[str]) -> dict[str, object]:
    result = verdict(lake, expected)
    chain = offset_chain_problems(lake)
    counts = lake.counts()
    assert result.lost == 0, result.examples
    assert result.duplicated == 0, result.examples
    assert result.unexpected == 0, result.examples
    assert not chain, chain[:5]
    total = len(expected)
    assert counts == {"consumed": total, "written": total, "dead_lettered": 0}
    return {**result.figures(), "offset_chain_problems": len(chain), "table_counts": counts}


def test_members_joining_and_leaving_lose_and_duplicate_nothing(
    stack: Endpoints, tmp_path: Path
) -> None:
    began = time.monotonic()
    records = RATE * (90 if LONG else 30)
    members: list[WorkerProcess] = []
    live: list[WorkerProcess] = []
    events: list[str] = []

    def join() -> None:
        worker = WorkerProcess(lake, tmp_path / f"member-{len(members)}.log", MEMBER)
        members.append(worker)
        live.append(worker)
        events.append(f"join {len(members) - 1}")

    def leave(how: Callable[[WorkerProcess], int], name: str) -> None:
        worker = live.pop(0)
        # A member leaves once it is one: SIGTERM during its imports is no group event.
        _wait_started(worker)
        code = how(worker)
        events.append(f"{name} {members.index(worker)} (exit {code})")

    with prefixed_lake(stack, "grp") as lake:
        thread, producer, expected = _produce_in_background(lake, records)
        try:
            for _ in range(3):
                join()
            wait_until(lambda: lake.consumed() > 0, 180, "first commit of the group")
            # Churn until the producer is done: graceful leaves, kill -9s and joins, with
            # never fewer than two members (so work always moves, never stops).
            step = 0
            while thread.is_alive():
                time.sleep(4)
                if step % 2 == 0:
                    leave(WorkerProcess.stop, "leave (SIGTERM)")
                else:
                    leave(WorkerProcess.kill9, "crash (kill -9)")
                join()
                step += 1
            _finish(lake, thread, producer, expected)
            for worker in live:
                _wait_started(worker)
                assert worker.alive(), f"a member died by itself: see {worker.log_file}"
                assert worker.stop() == 0, f"see {worker.log_file}"
        finally:
            stop_all(members)
        figures = _check(lake, expected)
    record_figures(
        "group_membership_churn",
        members_started=len(members),
        membership_changes=len(events),
        events=events,
        wall_s=round(time.monotonic() - began, 1),
        **figures,
    )


def test_zombie_member_cannot_commit_stale_data(stack: Endpoints, tmp_path: Path) -> None:
    began = time.monotonic()
    episodes = 3 if LONG else 1
    records = RATE * (20 + 25 * episodes)
    with prefixed_lake(stack, "zmb") as lake:
        thread, producer, expected = _produce_in_background(lake, records)
        # The zombie holds an open batch for seconds, so it is frozen with uncommitted rows.
        zombie = WorkerProcess(lake, tmp_path / "zombie.log", {**MEMBER, "max_age_s": "3"})
        others = [WorkerProcess(lake, tmp_path / f"member-{i}.log", MEMBER) for i in range(2)]
        workers = [zombie, *others]
        try:
            for worker in workers:
                _wait_started(worker)
            wait_until(lambda: lake.consumed() > 0, 180, "first commit")
            for _ in range(episodes):
                time.sleep(3)  # let it buffer part of a batch
                zombie.freeze()
                # Past its session timeout: evicted, its partitions move and get committed on.
                time.sleep(SESSION_TIMEOUT_MS / 1000 * 2 + 3)
                zombie.thaw()
                time.sleep(8)
            _finish(lake, thread, producer, expected)
            for worker in workers:
                assert worker.alive(), f"a member died by itself: see {worker.log_file}"
            for worker in workers:
                assert worker.stop() == 0, f"see {worker.log_file}"
        finally:
            stop_all(workers)
        figures = _check(lake, expected)
        log = zombie.log_text()
    record_figures(
        "zombie_member",
        episodes=episodes,
        zombie_dropped_stale_batches=log.count("dropping batch"),
        zombie_lost_partitions=log.count('"lost": true'),
        wall_s=round(time.monotonic() - began, 1),
        **figures,
    )
