"""Dashboards and alert rules parse (promtool) and reference only metrics K2 exports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from k2stack.local.context import default_cache_dir
from k2stack.local.install import debian_package
from k2stack.local.services.prometheus import DEBIAN_VERSION as PROMETHEUS_DEBIAN_VERSION
from k2stack.observability import (
    K2_METRICS,
    dashboard_files,
    dashboard_queries,
    exported_series,
    referenced_series,
    rule_files,
    rule_queries,
)
from k2stack.pulumi.monitoring import grafana_uploads, prometheus_config

QUERIES = dashboard_queries() + rule_queries()


def promtool() -> Path:
    """promtool from the same Debian package the local backend runs (fetched once, cached)."""
    if override := os.environ.get("K2_PROMTOOL"):
        return Path(override)
    root = debian_package(default_cache_dir(), "prometheus", PROMETHEUS_DEBIAN_VERSION)
    return root / "usr" / "bin" / "promtool"


def test_there_are_dashboards_and_rules() -> None:
    assert dashboard_files()
    assert rule_files()
    assert len(QUERIES) > 20


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.source)
def test_query_references_only_exported_metrics(query) -> None:  # type: ignore[no-untyped-def]
    names = referenced_series(query.expr)
    assert names, f"{query.source}: selects no metric"
    assert names <= exported_series(), f"{query.source}: unknown {names - exported_series()}"


def test_every_k2_metric_is_on_a_dashboard() -> None:
    used = set().union(*(referenced_series(q.expr) for q in dashboard_queries()))
    for metric in K2_METRICS:
        assert any(name.startswith(metric.name) for name in used), metric.name


def test_rules_pass_promtool(tmp_path: Path) -> None:
    tool = promtool()
    result = subprocess.run(
        [str(tool), "check", "rules", *map(str, rule_files())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_parse_with_promtool(tmp_path: Path) -> None:
    """promtool parses PromQL only inside rules: wrap every panel query as a recording rule."""
    rules = [
        {"record": f"k2:dashboard_query_{i}", "expr": q.expr}
        for i, q in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [str(promtool()), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    config = prometheus_config()
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    for path in rule_files():
        shutil.copy(path, rules_dir / path.name)
    config["rule_files"] = [str(rules_dir / "*.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [str(promtool()), "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_is_complete() -> None:
    uploads = grafana_uploads()
    assert any(p.endswith("datasources/prometheus.yml") for p in uploads)
    assert any(p.endswith("dashboards/k2.yml") for p in uploads)
    datasource = yaml.safe_load(
        next(v for p, v in uploads.items() if p.endswith("datasources/prometheus.yml"))
    )["datasources"][0]
    for path in dashboard_files():
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
