"""Prometheus metrics of the ingest workers, built from `k2.ingest.metric_names` (the one
declaration dashboards and alert rules are held to)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from k2.ingest import metric_names as m
from k2.ingest.metric_names import METRICS


class IngestMetrics:
    """All ingest metrics, each carrying the `table` label."""

    def __init__(self, table: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.table = table
        self._consumed = _counter(m.CONSUMED, r)
        self._written = _counter(m.WRITTEN, r)
        self._dead = _counter(m.DEAD_LETTERED, r)
        self._commit_latency = _histogram(m.COMMIT_LATENCY, r)
        self._batch_records = _histogram(m.BATCH_RECORDS, r)
        self._lag = _gauge(m.LAG, r)
        self._freshness = _histogram(m.FRESHNESS, r)
        self._gaps = _counter(m.SEQUENCE_GAPS, r)
        self._out_of_order = _counter(m.OUT_OF_ORDER, r)
        self._conflicts = _counter(m.COMMIT_CONFLICTS, r)
        self._budget = _counter(m.BUDGET_EXCEEDED, r)
        self._retries = _counter(m.DEPENDENCY_RETRIES, r)
        self._buffered = _gauge(m.BUFFERED_BYTES, r)
        self._paused = _gauge(m.PAUSED, r)

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


# The declared type of each name is checked against what these build by a unit test.
def _counter(name: str, registry: CollectorRegistry) -> Counter:
    # prometheus_client appends `_total` to a counter's name itself.
    metric = METRICS[name]
    return Counter(name.removesuffix("_total"), metric.help, list(metric.labels), registry=registry)


def _gauge(name: str, registry: CollectorRegistry) -> Gauge:
    metric = METRICS[name]
    return Gauge(name, metric.help, list(metric.labels), registry=registry)


def _histogram(name: str, registry: CollectorRegistry) -> Histogram:
    metric = METRICS[name]
    return Histogram(
        name, metric.help, list(metric.labels), buckets=metric.buckets, registry=registry
    )
