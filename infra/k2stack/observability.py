"""What K2 exports to Prometheus, and where the dashboards and alert rules live.

The ingest worker exports exactly the metrics listed here; Grafana dashboards and Prometheus
alert rules (files under `infra/grafana/` and `infra/prometheus/`) may reference nothing else,
and a test holds them to it. Both backends read the worker's metrics port from here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict


class MetricType(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class Metric(BaseModel):
    """One metric family K2 exports, as its Prometheus name (counters end in `_total`)."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()


# Every K2 metric carries the table it writes (or the topic it reads); a few add their own.
_BASE = ("table", "topic")

K2_METRICS: tuple[Metric, ...] = (
    Metric(
        name="k2_records_consumed_total",
        type=MetricType.COUNTER,
        help="Records read from Kafka",
        labels=_BASE,
    ),
    Metric(
        name="k2_records_written_total",
        type=MetricType.COUNTER,
        help="Records committed to Iceberg",
        labels=_BASE,
    ),
    Metric(
        name="k2_records_dead_lettered_total",
        type=MetricType.COUNTER,
        help="Records routed to the dead-letter queue",
        labels=(*_BASE, "reason"),
    ),
    Metric(
        name="k2_commit_latency_seconds",
        type=MetricType.HISTOGRAM,
        help="Time to commit one batch to Iceberg",
        labels=_BASE,
    ),
    Metric(
        name="k2_batch_records",
        type=MetricType.HISTOGRAM,
        help="Records per committed batch",
        labels=_BASE,
    ),
    Metric(
        name="k2_consumer_lag",
        type=MetricType.GAUGE,
        help="Records between the committed offset and the log end, per partition",
        labels=(*_BASE, "partition"),
    ),
    Metric(
        name="k2_freshness_seconds",
        type=MetricType.HISTOGRAM,
        help="Exchange timestamp to Iceberg commit, per record",
        labels=_BASE,
    ),
    Metric(
        name="k2_sequence_gaps_total",
        type=MetricType.COUNTER,
        help="Gaps seen in per-symbol exchange sequence numbers",
        labels=_BASE,
    ),
    Metric(
        name="k2_out_of_order_total",
        type=MetricType.COUNTER,
        help="Records older than one already seen for their key",
        labels=_BASE,
    ),
    Metric(
        name="k2_commit_conflicts_total",
        type=MetricType.COUNTER,
        help="Iceberg commits that lost a race with another writer",
        labels=_BASE,
    ),
    Metric(
        name="k2_dependency_retries_total",
        type=MetricType.COUNTER,
        help="Backoffs while a dependency (Kafka, registry, S3, catalog) was unavailable",
        labels=(*_BASE, "error"),
    ),
    Metric(
        name="k2_dlq_budget_exceeded_total",
        type=MetricType.COUNTER,
        help="Times the dead-letter budget (max invalid ratio) stopped a worker",
        labels=_BASE,
    ),
)

METRICS: Mapping[str, Metric] = {m.name: m for m in K2_METRICS}

# Prometheus derives these series from a histogram family; a query may use any of them.
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Series every Prometheus target has, whatever it exports.
SYNTHETIC_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

# The ingest worker serves /metrics on this port (container port in Docker; the local
# backend's default). Prometheus scrapes it under this job name in both backends.
WORKER_METRICS_PORT = 19400
WORKER_METRICS_PATH = "/metrics"
INGEST_JOB = "k2-ingest"

INFRA_DIR = Path(__file__).resolve().parent.parent
GRAFANA_DIR = INFRA_DIR / "grafana"
PROMETHEUS_DIR = INFRA_DIR / "prometheus"


def exported_series() -> frozenset[str]:
    """Every series name a query may select: K2's metrics (histograms expanded) and `up`."""
    names: set[str] = set(SYNTHETIC_SERIES)
    for metric in K2_METRICS:
        if metric.type is MetricType.HISTOGRAM:
            names.update(metric.name + suffix for suffix in _HISTOGRAM_SUFFIXES)
        else:
            names.add(metric.name)
    return frozenset(names)


def rule_files() -> tuple[Path, ...]:
    """Prometheus alert and recording rule files, in a stable order."""
    return tuple(sorted(PROMETHEUS_DIR.glob("rules/*.yml")))


def dashboard_files() -> tuple[Path, ...]:
    """Grafana dashboard JSON files, in a stable order."""
    return tuple(sorted((GRAFANA_DIR / "dashboards").glob("*.json")))


# Grafana variables are not PromQL: substitute what "All" and the default interval mean.
_GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$table": ".*"}


class Query(BaseModel):
    """A PromQL expression from a dashboard panel or an alert rule, and where it came from."""

    model_config = ConfigDict(frozen=True)

    source: str
    expr: str


def dashboard_queries() -> tuple[Query, ...]:
    """Every panel target and template query of every dashboard, variables substituted."""
    queries: list[Query] = []
    for path in dashboard_files():
        dashboard = json.loads(path.read_text())
        for panel in dashboard.get("panels", []):
            for target in panel.get("targets", []):
                where = f"{path.name}: panel {panel['title']!r} target {target['refId']}"
                queries.append(Query(source=where, expr=_substitute(target["expr"])))
        for variable in dashboard.get("templating", {}).get("list", []):
            match = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["definition"])
            if match:
                where = f"{path.name}: variable {variable['name']!r}"
                queries.append(Query(source=where, expr=match.group(1)))
    return tuple(queries)


def rule_queries() -> tuple[Query, ...]:
    """Every alert and recording rule expression."""
    queries: list[Query] = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule["record"]
                queries.append(Query(source=f"{path.name}: {name}", expr=rule["expr"].strip()))
    return tuple(queries)


def _substitute(expr: str) -> str:
    for variable, value in _GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


_PROMQL_WORDS = frozenset(
    {
        *("by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"),
        *("and", "or", "unless", "inf", "nan"),
        *("sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk"),
        *("quantile", "count_values", "group"),
    }
)


def referenced_series(expr: str) -> frozenset[str]:
    """The metric names a PromQL expression selects (a lexical reading, not a full parser).

    Label matchers, label lists, ranges, strings and function names are stripped first, so
    what is left that looks like an identifier is a metric name.
    """
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    stripped = re.sub(r"\{[^}]*\}", "", stripped)
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)
    stripped = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", stripped
    )
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][\w:]*", stripped):
        name = match.group(0)
        rest = stripped[match.end() :].lstrip()
        if name in _PROMQL_WORDS or rest.startswith("("):
            continue
        names.add(name)
    return frozenset(names)
