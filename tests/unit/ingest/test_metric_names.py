"""The worker exports exactly the metrics `k2.ingest.metric_names` declares: names, types,
labels (dashboards and alert rules are held to the same list in tests/infra)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from k2.ingest.metric_names import K2_METRICS, MetricType
from k2.ingest.metrics import IngestMetrics


def test_the_worker_exports_exactly_the_declared_metrics() -> None:
    metrics = IngestMetrics("trades", CollectorRegistry())
    metrics.preinitialise(["duplicate"], ["OSError"])
    metrics.lag("k2.trades", 0, 5)
    exported: dict[str, tuple[str, frozenset[str]]] = {}
    for family in metrics.registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = frozenset(k for s in family.samples for k in s.labels if k != "le")
        exported[name] = (family.type, labels)
    declared = {m.name: (MetricType(m.type).value, frozenset(m.labels)) for m in K2_METRICS}
    assert exported == declared
