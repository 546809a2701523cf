"""Every metric an ingest worker exports: name, type, help and labels, declared once.

`k2.ingest.metrics` builds its collectors from this list; `k2stack.observability` holds the
Grafana dashboards and Prometheus rules to it (they may reference nothing else, and every
metric here is on a dashboard), and a unit test checks the worker exports exactly this.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class MetricType(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class Metric(BaseModel):
    """One metric family, as its Prometheus name (counters end in `_total`)."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ("table",)
    buckets: tuple[float, ...] = ()


LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
FRESHNESS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)
BATCH_BUCKETS = (1, 10, 100, 1_000, 5_000, 10_000, 50_000, 100_000, 200_000, 500_000)

CONSUMED = "k2_records_consumed_total"
WRITTEN = "k2_records_written_total"
DEAD_LETTERED = "k2_records_dead_lettered_total"
COMMIT_LATENCY = "k2_commit_latency_seconds"
BATCH_RECORDS = "k2_batch_records"
LAG = "k2_consumer_lag"
FRESHNESS = "k2_freshness_seconds"
SEQUENCE_GAPS = "k2_sequence_gaps_total"
OUT_OF_ORDER = "k2_out_of_order_total"
COMMIT_CONFLICTS = "k2_commit_conflicts_total"
DEPENDENCY_RETRIES = "k2_dependency_retries_total"
BUDGET_EXCEEDED = "k2_dlq_budget_exceeded_total"
BUFFERED_BYTES = "k2_buffered_bytes"
PAUSED = "k2_consumer_paused"

K2_METRICS: tuple[Metric, ...] = (
    Metric(name=CONSUMED, type=MetricType.COUNTER, help="Records read from Kafka"),
    Metric(name=WRITTEN, type=MetricType.COUNTER, help="Records committed to Iceberg"),
    Metric(
        name=DEAD_LETTERED,
        type=MetricType.COUNTER,
        help="Records routed to the dead-letter queue",
        labels=("table", "reason"),
    ),
    Metric(
        name=COMMIT_LATENCY,
        type=MetricType.HISTOGRAM,
        help="Time to commit one batch to Iceberg",
        buckets=LATENCY_BUCKETS,
    ),
    Metric(
        name=BATCH_RECORDS,
        type=MetricType.HISTOGRAM,
        help="Records per committed batch",
        buckets=BATCH_BUCKETS,
    ),
    Metric(
        name=LAG,
        type=MetricType.GAUGE,
        help="Records between the committed offset and the log end, per partition",
        labels=("table", "topic", "partition"),
    ),
    Metric(
        name=FRESHNESS,
        type=MetricType.HISTOGRAM,
        help="Kafka timestamp to Iceberg commit (first record of each poll chunk in a batch)",
        buckets=FRESHNESS_BUCKETS,
    ),
    Metric(
        name=SEQUENCE_GAPS,
        type=MetricType.COUNTER,
        help="Gaps seen in per-symbol exchange sequence numbers",
    ),
    Metric(
        name=OUT_OF_ORDER,
        type=MetricType.COUNTER,
        help="Records older than one already seen for their key",
    ),
    Metric(
        name=COMMIT_CONFLICTS,
        type=MetricType.COUNTER,
        help="Iceberg commits that lost a race with another writer",
    ),
    Metric(
        name=DEPENDENCY_RETRIES,
        type=MetricType.COUNTER,
        help="Backoffs while a dependency (Kafka, registry, S3, catalog) was unavailable",
        labels=("table", "error"),
    ),
    Metric(
        name=BUDGET_EXCEEDED,
        type=MetricType.COUNTER,
        help="Times the dead-letter budget (max invalid ratio) stopped a worker",
    ),
    Metric(
        name=BUFFERED_BYTES,
        type=MetricType.GAUGE,
        help="Raw bytes consumed but not yet visible in the table (open batch + commit in flight)",
    ),
    Metric(
        name=PAUSED,
        type=MetricType.GAUGE,
        help="1 while backpressure pauses the worker's partitions",
    ),
)

METRICS: Mapping[str, Metric] = {m.name: m for m in K2_METRICS}
