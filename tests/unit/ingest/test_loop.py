"""The ingest loop through its seam: the real worker, in-memory source, sink and DLQ."""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from k2.contracts.catalogue import load_catalogue
from k2.ingest.config import IngestSettings
from k2.ingest.metrics import IngestMetrics
from k2.ingest.worker import IngestWorker

from .fakes import FakeDlq, FakeSink, FakeSource
from .helpers import TOPIC, Msg, encode
from .test_steps import decoder, trade

TP0, TP1 = (TOPIC, 0), (TOPIC, 1)


def _log(partitions: int, per_partition: int) -> dict[int, list[Msg]]:
    return {
        p: [
            Msg(encode(trade(p * 1000 + n, symbol=["BHP", "CBA"][p % 2])), n, p)
            for n in range(per_partition)
        ]
        for p in range(partitions)
    }


class Loop:
    """A worker wired to fakes; `run()` consumes until the source is drained."""

    def __init__(self, log: dict[int, list[Msg]], **settings: Any) -> None:
        self.events: list[str] = []
        self.source = FakeSource(log)
        self.sink = FakeSink(self.events)
        self.dlq = FakeDlq(self.events)
        defaults: dict[str, Any] = {
            "max_records": 4,
            "max_age_s": 0.01,
            "poll_batch": 3,
            "poll_timeout_s": 0.001,
            "bounded_native_memory": False,
            "gc_young_threshold": 0,
            "max_backoff_s": 0.01,
        }
        self.worker = IngestWorker(
            load_catalogue().dataset("trades"),
            source=self.source,
            decoder=decoder(),
            sink=self.sink,
            dlq=self.dlq,
            metrics=IngestMetrics("trades", CollectorRegistry()),
            settings=IngestSettings(**{**defaults, **settings}),
        )
        self.source.when_drained = self.worker.stop

    def run(self) -> None:
        self.worker.run(max_seconds=10)


def test_assignment_starts_at_the_table_offsets_and_commits_them_with_the_rows() -> None:
    loop = Loop(_log(2, 6))
    loop.sink.offsets = {TP0: 2}  # the table already holds partition 0 up to offset 2
    loop.source.assign([0, 1])
    loop.run()
    assert sorted(loop.sink.trade_ids()) == sorted(
        [f"T{n}" for n in range(2, 6)] + [f"T{1000 + n}" for n in range(6)]
    )
    assert loop.sink.offsets == {TP0: 6, TP1: 6}
    assert loop.source.group_commits[-1].items() <= {TP0: 6, TP1: 6}.items()
    assert loop.source.closed and loop.sink.closed and loop.dlq.closed


def test_a_stop_on_purpose_hands_the_partitions_over_unless_told_not_to() -> None:
    loop = Loop(_log(1, 3))
    loop.source.assign([0])
    loop.run()
    assert loop.source.handed_over is True  # a static member leaves: the others take over now
    kept = Loop(_log(1, 3), hand_over_on_stop=False)
    kept.source.assign([0])
    kept.run()
    assert kept.source.handed_over is False


def test_a_failing_worker_keeps_its_partitions_for_its_restart() -> None:
    loop = Loop(_log(1, 3))
    loop.source.assign([0])

    def broken(_pending: object) -> None:
        raise RuntimeError("catalog exploded")

    loop.sink.commit = broken  # type: ignore[method-assign,assignment]
    with pytest.raises(RuntimeError, match="catalog exploded"):
        loop.run()
    assert loop.source.closed and loop.source.handed_over is False


def test_revocation_commits_what_was_read_before_letting_go() -> None:
    loop = Loop(_log(2, 3), max_records=1000, max_age_s=60)
    loop.source.assign([0, 1])
    loop.source.poll(0, 0)  # nothing yet
    loop.worker.process(loop.source.poll(100, 0))
    assert loop.sink.offsets == {}  # a batch is open, not committed
    loop.source.revoke([1])
    assert loop.sink.offsets == {TP0: 3, TP1: 3}  # flushed before partition 1 left
    loop.source.revoke([0], lost=True)  # lost: nothing left to flush, nothing committed
    assert loop.events == ["commit"]


def test_a_stale_batch_is_dropped_and_read_again_from_the_table_offset() -> None:
    loop = Loop(_log(1, 6), max_records=100)
    loop.source.assign([0])
    loop.worker.process(loop.source.poll(100, 0))  # T0..T5 read, not committed yet
    # Meanwhile another writer committed offsets 0..2 of partition 0 (its rows included).
    other = Loop(_log(1, 3), max_records=100)
    other.source.assign([0])
    other.run()
    loop.sink.rows = list(other.sink.rows)
    loop.sink.steal = {TP0: 3}

    def done() -> None:
        if loop.sink.offsets.get(TP0) == 6:
            loop.worker.stop()

    loop.source.when_drained = done
    loop.run()
    assert sorted(loop.sink.trade_ids()) == [f"T{n}" for n in range(6)]  # each exactly once
    assert loop.sink.offsets == {TP0: 6}


def test_dead_letters_are_durable_before_the_commit_that_passes_them() -> None:
    log = _log(1, 4)
    log[0][1] = Msg(b"\x00garbage", 1, 0)
    loop = Loop(log, max_records=100, max_age_s=60)  # one batch, flushed on the way out
    loop.source.assign([0])
    loop.run()
    assert loop.events == ["dlq 1", "commit"]
    assert [letter.message.offset() for letter in loop.dlq.letters] == [1]
    assert loop.sink.offsets == {TP0: 4}

    failing = Loop(log, max_records=100, max_age_s=60)
    failing.dlq.fail = RuntimeError("DLQ refused")
    failing.source.assign([0])
    with pytest.raises(RuntimeError, match="DLQ refused"):
        failing.run()
    assert failing.sink.offsets == {}  # no commit moves past an undelivered dead letter
    assert "commit" not in failing.events


def test_a_replay_is_dead_lettered_as_duplicate_never_written_twice() -> None:
    log = _log(1, 4)
    log[0] += [Msg(m.payload, 4 + m.off, 0) for m in log[0]]  # the same records re-published
    loop = Loop(log)
    loop.source.assign([0])
    loop.run()
    assert sorted(loop.sink.trade_ids()) == [f"T{n}" for n in range(4)]
    assert {letter.reason for letter in loop.dlq.letters} == {"duplicate"}
    assert len(loop.dlq.letters) == 4


def test_a_stalled_sink_pauses_the_source_until_its_commit_lands() -> None:
    loop = Loop(_log(1, 40), max_records=4, max_age_s=0.01)
    gate = threading.Event()
    loop.sink.gate = gate
    loop.source.assign([0])
    runner = threading.Thread(target=loop.run)
    runner.start()
    deadline = time.monotonic() + 5
    while not loop.source.paused and time.monotonic() < deadline:
        time.sleep(0.005)
    assert loop.source.paused  # a full batch waits for the stalled commit: fetching paused
    waiting = loop.worker.waiting_bytes()
    time.sleep(0.05)
    assert loop.worker.waiting_bytes() == waiting  # and nothing more is buffered meanwhile
    gate.set()
    runner.join(10)
    assert not runner.is_alive()
    assert loop.sink.offsets == {TP0: 40}
    assert loop.source.pauses >= 1 and not loop.source.paused


def test_a_commit_that_lands_within_the_wait_never_pauses_the_source() -> None:
    # Pausing makes librdkafka drop its prefetched messages: a full batch first waits for a
    # commit in flight that lands soon (here 0.2 s, under BEHIND_WAIT_S) without pausing.
    loop = Loop(_log(1, 40), max_records=4, max_age_s=0.01)
    gate = threading.Event()
    loop.sink.gate = gate
    threading.Timer(0.2, gate.set).start()
    loop.source.assign([0])
    loop.run()
    assert loop.sink.offsets == {TP0: 40}
    assert loop.source.pauses == 0


def test_over_max_buffered_bytes_the_source_pauses() -> None:
    loop = Loop(_log(1, 40), max_records=1000, max_age_s=60, max_buffered_bytes=1)
    loop.source.assign([0])
    loop.worker.process(loop.source.poll(3, 0))
    loop.source.when_drained = None
    loop.worker.run(max_seconds=0.05)
    assert loop.source.pauses >= 1


def test_a_batch_of_dead_letters_is_one_log_line_with_reason_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = _log(1, 6)
    log[0][1] = Msg(b"\x00garbage", 1, 0)
    log[0][4] = Msg(encode(trade(4, price=Decimal("-1"))), 4, 0)
    loop = Loop(log, max_records=100, max_age_s=60)
    with caplog.at_level(logging.INFO, logger="k2.ingest"):
        loop.source.assign([0])
        loop.run()
    lines = [r for r in caplog.records if r.name.startswith("k2.ingest")]
    assert [r.getMessage() for r in lines] == ["assigned", "committed", "revoked"]
    k2 = lines[1].__dict__["k2"]
    assert k2["dead_lettered"] == 2
    assert sum(k2["dead_letter_reasons"].values()) == 2
    assert k2["dead_letter_reasons"]["non_positive_price"] == 1
