"""What K2 exports to Prometheus, and where the dashboards and alert rules live.

The ingest worker exports exactly the metrics listed in `k2.ingest.metric_names`; Grafana dashboards and Prometheus
alert rules (files under `infra/grafana/` and `infra/prometheus/`) may reference nothing else,
and a test holds them to it. Both backends read the worker's metrics port from here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

# The worker's metrics are declared once, in the `k2` package (its metrics module builds its
# collectors from the same list); re-exported here for the checks below and their tests.
from k2.ingest.metric_names import K2_METRICS, Metric, MetricType

__all__ = [
    "GRAFANA_DIR",
    "INFRA_DIR",
    "INGEST_JOB",
    "K2_METRICS",
    "PROMETHEUS_DIR",
    "SYNTHETIC_SERIES",
    "WORKER_METRICS_PATH",
    "WORKER_METRICS_PORT",
    "Metric",
    "MetricType",
    "Query",
    "dashboard_files",
    "dashboard_queries",
    "exported_series",
    "referenced_series",
    "rule_files",
    "rule_queries",
]


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
