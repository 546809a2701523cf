"""Issue 13: a worker killed with kill -9 and started again commits within seconds.

With static group membership (k2.ingest.identity) the restarted process takes the dead one's
slot, hence its `group.instance.id`, and gets its partitions back without waiting for the
dead member's session to expire (STACK.md: before, only 5 of 20 restarts ever got any).
A feed runs throughout; each cycle kills the worker, starts a new one at once, and measures
from the kill to the first snapshot the new process commits (its pid is in the snapshot's
`k2.writer`). The bound is on the p99 over all cycles of the time from its group join to
that commit; every produced trade must end up in the table exactly once.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from k2.bench.visibility import percentile
from k2.settings import Endpoints

from .faults_support import (
    LONG,
    FeedProducer,
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

CYCLES = 20 if LONG else 5
RATE = 1_000  # records/s offered throughout
# Asserted from the moment the new process joins its group (its "joining" log line) to its
# first commit: what static membership changes. Python's start-up before it is load-bound
# (measured with the machine at load average 30-50: kill to first commit p50 32 s, p99 102 s,
# nearly all of it imports), so it is recorded, not asserted. The target is 5 s; the
# bound leaves room for a loaded 2-core CI machine.
P99_BOUND_S = 10.0
# The target is 2 s from SIGTERM to the other worker's commit (the stopped worker's
# final flush included); the bound leaves room for a loaded CI machine and stays far below
# the 30 s session timeout a static member that does not leave holds its partitions for.
HANDOVER_BOUND_S = 10.0
WORKER = {"max_age_s": "0.5", "max_backoff_s": "2"}
FEED_CHUNK_S = 5  # the feed is encoded and offered in slices of this many seconds


def _first_commit_by(lake: Lake, pid: int, since_s: float, timeout_s: float) -> float:
    """Seconds from `since_s` to the first snapshot committed by process `pid`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for snapshot in lake.table().snapshots():
            summary = snapshot.summary
            writer = summary.get("k2.writer", "") if summary is not None else ""
            if writer.endswith(f":{pid}") and snapshot.timestamp_ms / 1000 >= since_s:
                return snapshot.timestamp_ms / 1000 - since_s
        time.sleep(0.2)
    raise AssertionError(f"worker {pid} made no commit within {timeout_s:.0f}s")


def _partitions_committed_by(lake: Lake, pid: int, since_s: float) -> list[tuple[float, set[str]]]:
    """(commit time, partitions) of each snapshot process `pid` committed since `since_s`."""
    found = []
    for snapshot in lake.table().snapshots():
        summary = snapshot.summary
        writer = summary.get("k2.writer", "") if summary is not None else ""
        offsets = summary.get("k2.offsets") if summary is not None else None
        when = snapshot.timestamp_ms / 1000
        if writer.endswith(f":{pid}") and when >= since_s and offsets is not None:
            found.append((when, set(json.loads(offsets))))
    return sorted(found, key=lambda item: item[0])


def _joining_at(worker: WorkerProcess) -> float:
    """When the worker logged "joining" (epoch seconds): its group join starts there."""
    for line in worker.log_text().splitlines():
        if line.startswith("{") and '"joining"' in line:
            stamp = json.loads(line)["ts"].replace("Z", "+00:00")
            return datetime.fromisoformat(stamp).timestamp()
    raise AssertionError(f"no 'joining' line in {worker.log_file}")


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50) or 0, 2),
        "p99": round(percentile(values, 99) or 0, 2),
        "max": round(max(values), 2),
    }


def _steady_feed(
    lake: Lake, producer: FeedProducer, produced: list[str], stop: threading.Event
) -> threading.Thread:
    """Fresh trades at RATE until `stop`: a worker that (re)joins late still finds records
    to commit however long the steps before it took."""

    def feed() -> None:
        run = uuid.uuid4().hex[:8]
        for chunk in itertools.count():
            if stop.is_set():
                return
            part = v2_feed(lake, f"{run}{chunk}", RATE * FEED_CHUNK_S)
            produced.extend(part.ids)
            producer.paced(part, RATE)

    feeding = threading.Thread(target=feed, daemon=True)
    feeding.start()
    return feeding


@pytest.mark.timeout(3600 if LONG else 1200)
def test_kill9_and_restart_commits_within_seconds(stack: Endpoints, tmp_path: Path) -> None:
    began = time.monotonic()
    with prefixed_lake(stack, "rst") as lake:
        producer = FeedProducer(lake)
        produced: list[str] = []
        stop = threading.Event()
        feeding = _steady_feed(lake, producer, produced, stop)
        workers = [WorkerProcess(lake, tmp_path / "worker-0.log", WORKER, metrics=False)]
        latencies: list[float] = []
        joined: list[float] = []
        try:
            _first_commit_by(lake, workers[0].pid, time.time() - 1, 180)
            for cycle in range(1, CYCLES + 1):
                workers[-1].kill9()
                killed = time.time()
                workers.append(
                    WorkerProcess(lake, tmp_path / f"worker-{cycle}.log", WORKER, metrics=False)
                )
                latencies.append(_first_commit_by(lake, workers[-1].pid, killed, 180))
                joined.append(killed + latencies[-1] - _joining_at(workers[-1]))
                time.sleep(1)  # a commit or two of its own before the next kill
            stop.set()
            feeding.join(120)
            assert not producer.failed, producer.failed[:5]
            wait_until(lambda: lake.consumed() >= len(produced), 300, "every record committed")
            assert workers[-1].stop() == 0, f"see {workers[-1].log_file}"
        finally:
            stop.set()
            stop_all(workers)
        result = verdict(lake, set(produced))
    p99 = percentile(joined, 99)
    record_figures(
        "restart_latency",
        cycles=CYCLES,
        kill_to_first_commit_s=_summary(latencies),
        join_to_first_commit_s=_summary(joined),
        wall_s=round(time.monotonic() - began, 1),
        **result.figures(),
    )
    assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 0), result.examples
    assert p99 is not None and p99 <= P99_BOUND_S, sorted(joined)


@pytest.mark.timeout(900)
def test_a_worker_stopped_with_sigterm_hands_its_partitions_over_at_once(
    stack: Endpoints, tmp_path: Path
) -> None:
    """Static members keep their partitions for the session timeout (30 s) unless they leave:
    a worker stopped on purpose removes itself from the group (k2.ingest.leave), so the
    remaining worker commits the stopped one's partitions within seconds, not ~28 s."""
    with prefixed_lake(stack, "hnd") as lake:
        producer = FeedProducer(lake)
        produced: list[str] = []
        stop = threading.Event()
        feeding = _steady_feed(lake, producer, produced, stop)
        first = WorkerProcess(lake, tmp_path / "first.log", WORKER, metrics=False)
        workers = [first]
        try:
            _first_commit_by(lake, first.pid, time.time() - 1, 180)
            second = WorkerProcess(lake, tmp_path / "second.log", WORKER, metrics=False)
            workers.append(second)
            joined = time.time()
            _first_commit_by(lake, second.pid, joined, 180)
            time.sleep(2)  # a few commits of its own: the partitions it holds are known
            theirs = set().union(
                *(p for _w, p in _partitions_committed_by(lake, second.pid, joined))
            )
            assert theirs, "the second worker committed no partition"
            stopped = time.time()
            assert second.stop() == 0, f"see {second.log_file}"
            deadline = time.monotonic() + 180
            taken: list[float] = []
            while not taken and time.monotonic() < deadline:
                taken = [
                    when
                    for when, partitions in _partitions_committed_by(lake, first.pid, stopped)
                    if partitions & theirs
                ]
                time.sleep(0.2)
            assert taken, "the remaining worker never committed the stopped one's partitions"
            handover_s = taken[0] - stopped
            stop.set()
            feeding.join(120)
            assert not producer.failed, producer.failed[:5]
            wait_until(lambda: lake.consumed() >= len(produced), 300, "every record committed")
            assert first.stop() == 0, f"see {first.log_file}"
        finally:
            stop.set()
            stop_all(workers)
        result = verdict(lake, set(produced))
    departure = [
        json.loads(line)["departure"]
        for line in second.log_text().splitlines()
        if line.startswith("{") and '"group departure"' in line
    ]
    record_figures(
        "sigterm_handover", handover_s=round(handover_s, 2), departure=departure, **result.figures()
    )
    assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 0), result.examples
    assert departure and departure[0]["left"], departure
    # Without leaving, the handover waited for the session timeout (30 s; ~28 s measured).
    assert handover_s <= HANDOVER_BOUND_S, handover_s
