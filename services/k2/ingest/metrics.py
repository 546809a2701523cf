"""Prometheus metrics of the ingest workers (names fixed: dashboards are built from them)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
FRESHNESS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)
BATCH_BUCKETS = (1, 10, 100, 1_000, 5_000, 10_000, 50_000, 100_000, 200_000, 500_000)


class IngestMetrics:
    """All ingest metrics, each carrying the `table` label."""

    def __init__(self, table: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.table = table
        self._consumed = Counter(
            "k2_records_consumed_total", "Records consumed from Kafka", ["table"], registry=r
        )
        self._written = Counter(
            "k2_records_written_total", "Rows committed to Iceberg", ["table"], registry=r
        )
        self._dead = Counter(
            "k2_records_dead_lettered_total",
            "Records sent to the DLQ",
            ["table", "reason"],
            registry=r,
        )
        self._commit_latency = Histogram(
            "k2_commit_latency_seconds",
            "Iceberg commit latency",
            ["table"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._batch_records = Histogram(
            "k2_batch_records",
            "Records per committed batch",
            ["table"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self._lag = Gauge(
            "k2_consumer_lag",
            "Records behind the high watermark",
            ["table", "topic", "partition"],
            registry=r,
        )
        self._freshness = Histogram(
            "k2_freshness_seconds",
            "Commit time minus Kafka timestamps (first record of each poll chunk in the batch)",
            ["table"],
            buckets=FRESHNESS_BUCKETS,
            registry=r,
        )
        self._gaps = Counter("k2_sequence_gaps_total", "Venue sequence gaps", ["table"], registry=r)
        self._out_of_order = Counter(
            "k2_out_of_order_total", "Out-of-order venue sequences", ["table"], registry=r
        )
        self._conflicts = Counter(
            "k2_commit_conflicts_total", "Iceberg commit conflicts", ["table"], registry=r
        )
        self._budget = Counter(
            "k2_dlq_budget_exceeded_total", "DLQ budget stops", ["table"], registry=r
        )
        self._retries = Counter(
            "k2_dependency_retries_total",
            "Backoffs while a dependency was unavailable, by error class",
            ["table", "error"],
            registry=r,
        )
        self._buffered = Gauge(
            "k2_buffered_bytes",
            "Raw bytes consumed but not yet visible in the table",
            ["table"],
            registry=r,
        )
        self._paused = Gauge(
            "k2_consumer_paused",
            "1 while backpressure pauses the worker's partitions",
            ["table"],
            registry=r,
        )

    def buffered(self, waiting_bytes: int) -> None:
        """Raw bytes consumed but not yet visible in the table."""
        self._buffered.labels(self.table).set(waiting_bytes)

    def paused(self, paused: bool) -> None:
        """Whether backpressure has paused the worker's partitions."""
        self._paused.labels(self.table).set(1 if paused else 0)

    def preinitialise(self, reasons: Iterable[str], errors: Iterable[str] = ()) -> None:
        """Create every series of this table at zero, so dashboards and alerts see them from
        the start (a histogram with no observation still exports _count and _sum)."""
        self._buffered.labels(self.table).set(0)
        self._paused.labels(self.table).set(0)
        for counter in (
            self._consumed,
            self._written,
            self._gaps,
            self._out_of_order,
            self._conflicts,
            self._budget,
        ):
            counter.labels(self.table).inc(0)
        for histogram in (self._commit_latency, self._batch_records, self._freshness):
            histogram.labels(self.table)
        for reason in reasons:
            self._dead.labels(self.table, reason).inc(0)
        for error in errors:
            self._retries.labels(self.table, error).inc(0)

    def consumed(self, n: int) -> None:
        """Records consumed."""
        self._consumed.labels(self.table).inc(n)

    def committed(
        self, written: int, dead_by_reason: dict[str, int], records: int, latency_s: float
    ) -> None:
        """One successful commit."""
        self._written.labels(self.table).inc(written)
        for reason, count in dead_by_reason.items():
            self._dead.labels(self.table, reason).inc(count)
        self._batch_records.labels(self.table).observe(records)
        self._commit_latency.labels(self.table).observe(latency_s)

    def freshness(self, seconds: float) -> None:
        """Age of a record when it became visible."""
        self._freshness.labels(self.table).observe(max(0.0, seconds))

    def lag(self, topic: str, partition: int, lag: int) -> None:
        """Consumer lag of one partition."""
        self._lag.labels(self.table, topic, str(partition)).set(lag)

    def sequences(self, gaps: int, out_of_order: int) -> None:
        """Venue-sequence flags."""
        if gaps:
            self._gaps.labels(self.table).inc(gaps)
        if out_of_order:
            self._out_of_order.labels(self.table).inc(out_of_order)

    def conflicts(self, n: int) -> None:
        """Commit conflicts (retried, not failures)."""
        if n:
            self._conflicts.labels(self.table).inc(n)

    def dependency_retry(self, error: str) -> None:
        """One backoff while a dependency was down (`error`: the exception's class name)."""
        self._retries.labels(self.table, error).inc()

    def budget_exceeded(self) -> None:
        """The DLQ budget stopped the worker."""
        self._budget.labels(self.table).inc()

    def serve(self, port: int, address: str = "127.0.0.1") -> None:
        """Expose /metrics on `address:port`."""
        start_http_server(port, addr=address, registry=self.registry)
