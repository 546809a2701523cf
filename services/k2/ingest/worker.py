"""The ingest loop: poll → decode → validate → dedup → batch → DLQ → Iceberg → group offsets.

A batch commits on a background thread (DLQ, Parquet, metadata commit) while the loop
consumes and decodes the next one: at most one commit in flight, joined before the next
flush and before any change of ownership (assign/revoke), so the batcher, the dedup cache and
the source are only ever touched by the loop's thread.

Backpressure: while the bytes consumed but not yet visible in the table (the open batch plus
the commit in flight) exceed `max_buffered_bytes`, or the open batch is full and the commit in
flight has not landed within `BEHIND_WAIT_S`, the loop pauses every partition and keeps
polling (which keeps the member alive in its group) until the commit lands; then it resumes.
Only the loop's thread pauses or resumes; the committer thread's retries only wait.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import FrameType
from typing import TypeVar

import pyarrow as pa
from confluent_kafka import OFFSET_BEGINNING, KafkaException
from pyiceberg.exceptions import ServerError, ServiceUnavailableError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from k2.contracts.catalogue import Dataset
from k2.ingest.batcher import Batcher, PendingBatch
from k2.ingest.config import IngestSettings
from k2.ingest.decoder import DECODE_REASONS, Decoder, DecodeResult
from k2.ingest.dedup import TableIdentities
from k2.ingest.dlq import DeadLetter, DlqBudget
from k2.ingest.errors import DlqBudgetExceededError, DlqDeliveryError
from k2.ingest.memory import relax_gc, release_free_memory
from k2.ingest.metrics import IngestMetrics
from k2.ingest.ports import DeadLetters, Sink, Source
from k2.ingest.schemas import RegistryUnavailableError, WriterSchema
from k2.ingest.sequence import SequenceTracker
from k2.ingest.sink import CommitOutcome
from k2.ingest.source import RawMessage, TopicPartitionKey
from k2.ingest.validator import Validator

log = logging.getLogger(__name__)

# Failures of a dependency that is down: wait and retry, never crash-loop.
TRANSIENT = (
    OSError,
    ServerError,
    ServiceUnavailableError,
    RegistryUnavailableError,
    DlqDeliveryError,
    KafkaException,
)
DUPLICATE = "duplicate"
# Poll timeout while a due batch waits for the commit in flight to finish.
DUE_POLL_S = 0.01
# How long a full batch waits for the commit in flight before the partitions are paused.
BEHIND_WAIT_S = 1.0
# Test-only fault injection: the reliability tests kill the process at these points.
FAULT_ENV = "K2_INGEST_FAULT"
FAULT_AFTER_DLQ = "after-dlq-send"
FAULT_AFTER_ICEBERG = "after-iceberg-commit"
FAULT_EXIT_CODE = 137  # what a kill -9 looks like to a supervisor
T = TypeVar("T")


@dataclass(frozen=True)
class _Done:
    """A finished background commit, applied on the loop's thread."""

    outcome: CommitOutcome
    latency_s: float
    finished_ms: float


class IngestWorker:
    """One consumer-group member writing one dataset's table."""

    def __init__(
        self,
        dataset: Dataset,
        *,
        source: Source,
        decoder: Decoder,
        sink: Sink,
        dlq: DeadLetters,
        metrics: IngestMetrics,
        settings: IngestSettings,
    ) -> None:
        self._dataset = dataset
        self._settings = settings
        self._decoder = decoder
        self._sink = sink
        self._dlq = dlq
        self._metrics = metrics
        self._batcher = Batcher(settings.commit_policy())
        # The catalogue says how this dataset is ingested; none there: refuse to start.
        spec = dataset.ingest_spec()
        self._validator = Validator.for_dataset(
            dataset, settings.min_event_time_us, settings.max_future_skew_s
        )
        id_column = spec.identity
        self._identities = TableIdentities(
            settings.dedup_window, id_column, lambda days: sink.identities(days, id_column)
        )
        self._required: frozenset[str] | None = None
        self._sequences = SequenceTracker()
        budget = spec.dlq_budget
        self._budget = DlqBudget(
            budget.max_ratio if settings.dlq_max_ratio is None else settings.dlq_max_ratio,
            budget.window if settings.dlq_window is None else settings.dlq_window,
            budget.min_records if settings.dlq_min_records is None else settings.dlq_min_records,
        )
        metrics.preinitialise(
            [*DECODE_REASONS, *self._validator.reasons, DUPLICATE], [t.__name__ for t in TRANSIENT]
        )
        self._stopping = False
        self._flushing = False
        self._failed = False  # after an error the open batch is never committed on the way out
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="k2-commit")
        self._inflight: Future[_Done] | None = None
        self._inflight_bytes = 0
        self._loop_thread = threading.get_ident()
        self._source = source
        source.subscribe(self._on_assign, self._on_revoke)
        # From here on the group join runs: restart latency is measured from this line.
        log.info("joining", extra={"k2": {"topic": dataset.topic.name}})

    @property
    def metrics(self) -> IngestMetrics:
        """The worker's metrics (serve them with `metrics.serve(port)`)."""
        return self._metrics

    # --- group membership -------------------------------------------------------------
    def _on_assign(self, tps: list[TopicPartitionKey]) -> dict[TopicPartitionKey, int | None]:
        self._join()  # the table's offsets must include our own commit in flight
        recorded = self._retrying(lambda: self._sink.recorded_offsets(self._dataset.topic.name))
        starts = {tp: recorded.get(tp) for tp in tps}
        self._forget_identities()  # another worker may have written these symbols meanwhile
        for tp, start in starts.items():
            self._batcher.assign(tp, start)
        log.info(
            "assigned",
            extra={"k2": {"partitions": {f"{t}:{p}": s for (t, p), s in starts.items()}}},
        )
        return starts

    def _on_revoke(self, tps: list[TopicPartitionKey], lost: bool) -> None:
        self._join()
        if not lost and not self._flushing and not self._failed:
            self._flush(wait=True)
        self._batcher.forget(tps)
        self._forget_identities()
        log.info(
            "revoked", extra={"k2": {"partitions": [f"{t}:{p}" for t, p in tps], "lost": lost}}
        )

    # --- the loop -----------------------------------------------------------------------
    def stop(self, *_args: object) -> None:
        """Ask the loop to flush, commit and leave the group."""
        self._stopping = True

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: graceful stop."""

        def handler(_signum: int, _frame: FrameType | None) -> None:
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self, max_seconds: float | None = None) -> None:
        """Consume until stopped (or `max_seconds`), then flush and leave the group."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        if self._settings.gc_young_threshold:
            relax_gc(self._settings.gc_young_threshold)
        try:
            while not self._stopping and (deadline is None or time.monotonic() < deadline):
                timeout = min(
                    self._settings.poll_timeout_s,
                    self._settings.commit_policy().time_left(self._batcher.age_s()),
                )
                if self._inflight is not None and self._batcher.should_flush():
                    timeout = DUE_POLL_S  # due, waiting for the commit in flight: keep reading
                self._wait_when_behind()
                self._apply_backpressure()
                messages = self._source.poll(self._settings.poll_batch, max(timeout, 0.001))
                if messages:
                    self.process(messages)
                if self._inflight is not None and self._inflight.done():
                    self._join()
                # A due batch waits for the commit in flight while it keeps filling; a full
                # one waits paused (backpressure), never blocking the loop in `_join`.
                if self._batcher.should_flush() and self._inflight is None:
                    self._flush()
            self._flush(wait=True)
        except DlqBudgetExceededError:
            self._failed = True
            self._metrics.budget_exceeded()
            log.critical("DLQ budget exceeded: stopping without committing the batch")
            raise
        except BaseException:
            self._failed = True
            raise
        finally:
            # Leaving the group revokes: that joins the commit in flight and flushes. A worker
            # that failed keeps a static member's partitions for its restart.
            self._source.close(hand_over=self._settings.hand_over_on_stop and not self._failed)
            self._committer.shutdown(wait=True)
            self._dlq.close()
            self._decoder.close()
            self._sink.close()

    def waiting_bytes(self) -> int:
        """Raw bytes consumed but not yet visible: the open batch plus the commit in flight."""
        return self._batcher.buffered_bytes + self._inflight_bytes

    def _wait_when_behind(self) -> None:
        """A full batch waits for the commit in flight: first for up to `BEHIND_WAIT_S`
        without pausing, then (still behind) paused by `_apply_backpressure`.

        Pausing makes librdkafka drop the partitions' prefetched messages and fetch them again
        on resume (librdkafka#5343, open), and most commits land well within the wait (0.2-0.3 s for 60k-100k trades):
        pausing at once cost a refill after every commit. Not polling meanwhile is safe: the
        group's heartbeats run on librdkafka's thread, and the wait is far below
        `max.poll.interval.ms`; a rebalance is served at the next poll."""
        inflight = self._inflight
        if inflight is None or self._source.paused or not self._batcher.is_full():
            return
        deadline = time.monotonic() + BEHIND_WAIT_S
        # In short steps: a stop request (SIGTERM: hand over within 2 s) is seen at once.
        while not inflight.done() and not self._stopping and time.monotonic() < deadline:
            wait([inflight], timeout=DUE_POLL_S * 5)
        if inflight.done():
            self._join()
            self._flush()

    def _apply_backpressure(self) -> None:
        """Pause every partition while too much waits for the table; resume once it caught up
        (on the loop's thread only)."""
        waiting = self.waiting_bytes()
        self._metrics.buffered(waiting)
        behind = self._inflight is not None and self._batcher.is_full()
        if behind or waiting > self._settings.max_buffered_bytes:
            if not self._source.paused:
                self._source.pause_all()
                self._metrics.paused(True)
        elif self._source.paused:
            self._source.resume_all()
            self._metrics.paused(False)

    def process(self, messages: Sequence[RawMessage]) -> None:
        """Decode, validate and dedup one poll chunk into the open batch."""
        self._metrics.consumed(len(messages))
        partitions = [m.partition() for m in messages]
        result: DecodeResult = self._retrying(lambda: self._decoder.decode(messages))
        self._batcher.consumed(messages, partitions, result.value_bytes)
        dead = list(result.dead)
        if self._required is None:
            self._required = self._retrying(self._sink.required_columns)
        for chunk in result.chunks:
            keep = [True] * chunk.batch.num_rows
            for rejection in self._validator.rejections(chunk.batch, self._required):
                keep[rejection.row] = False
                dead.append(
                    DeadLetter(
                        chunk.messages[rejection.row],
                        rejection.reason,
                        "ValidationError",
                        rejection.reason,
                    )
                )
            for row in self._duplicates(chunk.batch, keep):
                keep[row] = False
                dead.append(
                    DeadLetter(
                        chunk.messages[row],
                        DUPLICATE,
                        "DuplicateIdentity",
                        "identity already ingested at another offset",
                    )
                )
            chunk_partitions = (
                partitions
                if chunk.messages is messages
                else [m.partition() for m in chunk.messages]
            )
            self._add_rows(chunk.writer, chunk.batch, chunk.messages, chunk_partitions, keep)
        self._budget.record(len(messages), dead)
        self._batcher.add_dead(dead)

    def _duplicates(self, batch: pa.RecordBatch, keep: list[bool]) -> list[int]:
        identities = self._identities
        if identities.id_column not in batch.schema.names:
            return []
        if all(keep):  # the common case: no row rejected, row numbers are the batch's
            return self._retrying(lambda: identities.duplicates(batch))
        rows = [i for i, k in enumerate(keep) if k]
        if not rows:
            return []
        kept = batch.take(pa.array(rows, type=pa.int64()))
        found = self._retrying(lambda: identities.duplicates(kept))
        return [rows[j] for j in found]

    def _forget_identities(self) -> None:
        self._identities.clear()

    def _add_rows(
        self,
        writer: WriterSchema,
        batch: pa.RecordBatch,
        messages: Sequence[RawMessage],
        partitions: Sequence[int | None],
        keep: list[bool],
    ) -> None:
        # A poll chunk holds long runs of one partition: each run's rows are a zero-copy slice
        # (filtered only when some of its rows were rejected), not a mask over the whole chunk.
        topic = str(messages[0].topic()) if messages else self._dataset.topic.name
        start, n = 0, len(messages)
        while start < n:
            partition = partitions[start]
            end = start + 1
            while end < n and partitions[end] == partition:
                end += 1
            rows = batch.slice(start, end - start)
            run_keep = keep[start:end]
            if not all(run_keep):
                rows = rows.filter(pa.array(run_keep, type=pa.bool_()))
            self._batcher.add_rows((topic, int(partition or 0)), writer, rows)
            start = end

    # --- committing ---------------------------------------------------------------------
    def _flush(self, wait: bool = False) -> None:
        """Hand the open batch to the committer (after the one in flight has finished)."""
        self._join()
        taken_bytes = self._batcher.buffered_bytes
        pending = self._batcher.take()
        if not pending.partitions:
            return
        self._inflight_bytes = taken_bytes
        self._identities.seal()  # what it touched is committed once this commit lands
        self._inflight = self._committer.submit(self._commit, pending)
        if wait or not self._settings.commit_in_background:
            self._join()

    def _join(self) -> None:
        """Wait for the commit in flight, then apply its outcome here (re-raising its error)."""
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return
        self._inflight_bytes = 0
        self._flushing = True
        try:
            done = inflight.result()
        finally:
            self._flushing = False
        self._apply(done)

    def _commit(self, pending: PendingBatch) -> _Done:
        """On the committer thread: DLQ first, then the Iceberg commit."""
        dead = pending.dead
        started = time.monotonic()
        # The DLQ first: once the table's offsets move past a record it must be durable here.
        self._retrying(lambda: self._dlq.send(dead))
        _fault_point(FAULT_AFTER_DLQ)
        outcome = self._retrying(lambda: self._sink.commit(pending))
        if outcome.committed:
            _fault_point(FAULT_AFTER_ICEBERG)
        done = _Done(outcome, time.monotonic() - started, time.time() * 1000)
        self._record_commit(done)
        if self._settings.bounded_native_memory:
            # Here, off the loop's thread: trimming walks the whole heap (~9% of the loop's
            # time when it ran there, measured by py-spy).
            release_free_memory()
        return done

    def _record_commit(self, done: _Done) -> None:
        """Commit metrics, here on the committer thread (prometheus metrics are thread-safe):
        they move the moment the rows are visible, not when the loop next looks."""
        outcome = done.outcome
        self._metrics.conflicts(outcome.conflicts)
        if not outcome.committed:
            return
        committed = PendingBatch(outcome.committed)
        reasons = Counter(letter.reason for letter in committed.dead)
        self._metrics.committed(
            committed.written, dict(reasons), committed.consumed, done.latency_s
        )
        for batch in committed.partitions.values():
            for timestamp_ms in batch.chunk_timestamps_ms:
                if timestamp_ms > 0:
                    self._metrics.freshness((done.finished_ms - timestamp_ms) / 1000)
        # Sequence counters only count committed rows: a dropped batch is read again (by us or
        # the new owner), so counting before the commit would count it twice. Only this thread
        # touches the tracker (commits run one at a time, in order).
        self._observe_sequences(committed)

    def _observe_sequences(self, committed: PendingBatch) -> None:
        """One observation over the whole commit: it holds hundreds of small row chunks (a
        poll chunk's run per partition), and a call per chunk cost seconds per commit. A
        symbol lives in one partition, so concatenating keeps each one's rows in order."""
        columns = ["exchange", "symbol", "venue_sequence"]
        pieces = [
            pa.RecordBatch.from_arrays(rows.select(columns).columns, names=columns)
            for batch in committed.partitions.values()
            for _writer, rows in batch.rows
            if "venue_sequence" in rows.schema.names
        ]
        if not pieces:
            return
        report = self._sequences.observe_batch(pa.Table.from_batches(pieces))
        self._metrics.sequences(report.gaps, report.out_of_order)

    def _apply(self, done: _Done) -> None:
        outcome = done.outcome
        if outcome.dropped:
            positions = {
                tp: (OFFSET_BEGINNING if o is None else o) for tp, o in outcome.dropped.items()
            }
            for tp, offset in outcome.dropped.items():
                # Also drops the open batch's rows of tp: they follow the dropped ones.
                self._batcher.assign(tp, offset)
            self._source.seek(positions)
            # The dropped rows' identities were remembered but never committed.
            self._forget_identities()
        if not outcome.committed:
            return
        committed = PendingBatch(outcome.committed)
        self._identities.trim()
        ends = {tp: b.end for tp, b in committed.partitions.items() if b.end is not None}
        self._source.commit_group_offsets(ends)
        log.info(
            "committed",
            extra={
                "k2": {
                    "table": self._metrics.table,
                    "snapshot": outcome.snapshot_id,
                    "consumed": committed.consumed,
                    "written": committed.written,
                    "dead_lettered": len(committed.dead),
                    # The one log line of a batch's dead letters: how many for each reason.
                    "dead_letter_reasons": dict(Counter(d.reason for d in committed.dead)),
                    "latency_s": round(done.latency_s, 4),
                }
            },
        )

    def _retrying(self, action: Callable[[], T]) -> T:
        """Run `action`, backing off while a dependency is down (no crash loop)."""
        retrying = Retrying(
            retry=retry_if_exception_type(TRANSIENT),
            wait=wait_exponential(multiplier=0.2, max=self._settings.max_backoff_s),
            sleep=self._idle,
            before_sleep=self._backing_off,
            reraise=True,
        )
        return retrying(action)

    def _backing_off(self, state: RetryCallState) -> None:
        """Before each backoff: a log line and `k2_dependency_retries_total{error=...}`."""
        error = state.outcome.exception() if state.outcome else None
        self._metrics.dependency_retry(type(error).__name__)
        log.warning(
            "dependency unavailable, retrying",
            extra={"k2": {"attempt": state.attempt_number, "error": repr(error)}},
        )

    def _idle(self, seconds: float) -> None:
        """Back off. On the loop's thread without buffering more: partitions stay paused while
        it waits. The committer thread only waits (the loop's backpressure pauses for it)."""
        if threading.get_ident() != self._loop_thread or self._source.paused:
            time.sleep(seconds)
            return
        self._source.pause_all()
        try:
            time.sleep(seconds)
        finally:
            self._source.resume_all()


def _fault_point(name: str) -> None:
    """Die like kill -9 here when `K2_INGEST_FAULT` names this point (tests only)."""
    if os.environ.get(FAULT_ENV) == name:
        log.critical("fault injected", extra={"k2": {"fault": name}})
        os._exit(FAULT_EXIT_CODE)
