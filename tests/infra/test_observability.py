"""Dashboards and alert rules parse (promtool) and reference only metrics K2 exports; the
Docker stack's Prometheus and Grafana are configured to find them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from k2stack.docker.spec import ContainerSpec, StackSpec
from k2stack.docker.stack_spec import GRAFANA_DASHBOARDS, GRAFANA_PROVISIONING, stack_spec
from k2stack.local.context import default_cache_dir
from k2stack.local.install import debian_package
from k2stack.local.services.prometheus import DEBIAN_VERSION as PROMETHEUS_DEBIAN_VERSION
from k2stack.local.services.prometheus import scrape_config
from k2stack.observability import (
    INGEST_JOB,
    K2_METRICS,
    Query,
    dashboard_files,
    dashboard_queries,
    exported_series,
    referenced_series,
    rule_files,
    rule_queries,
)
from k2stack.pulumi.program import k2_version
from k2stack.serve import SERVE_ENV_PREFIX, ServeSettings, container_context
from tests.infra.infra_harness import validated_config

QUERIES = dashboard_queries() + rule_queries()


def promtool() -> Path:
    """promtool from the same Debian package the local backend runs (fetched once, cached)."""
    if override := os.environ.get("K2_PROMTOOL"):
        return Path(override)
    root = debian_package(default_cache_dir(), "prometheus", PROMETHEUS_DEBIAN_VERSION)
    return root / "usr" / "bin" / "promtool"


def promtool_check(kind: str, *paths: Path) -> None:
    result = subprocess.run(
        [str(promtool()), "check", kind, *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def dev_spec() -> StackSpec:
    return stack_spec(validated_config("dev"), k2_version())


def test_there_are_dashboards_and_rules() -> None:
    assert dashboard_files()
    assert rule_files()
    assert len(QUERIES) > 20


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.source)
def test_query_references_only_exported_metrics(query: Query) -> None:
    names = referenced_series(query.expr)
    assert names, f"{query.source}: selects no metric"
    assert names <= exported_series(), f"{query.source}: unknown {names - exported_series()}"


def test_every_k2_metric_is_on_a_dashboard() -> None:
    used = set().union(*(referenced_series(q.expr) for q in dashboard_queries()))
    for metric in K2_METRICS:
        assert any(name.startswith(metric.name) for name in used), metric.name


def test_rules_pass_promtool() -> None:
    promtool_check("rules", *rule_files())


def test_dashboard_queries_parse_with_promtool(tmp_path: Path) -> None:
    """promtool parses PromQL only inside rules: wrap every panel query as a recording rule."""
    rules = [
        {"record": f"k2:dashboard_query_{i}", "expr": q.expr}
        for i, q in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    promtool_check("rules", path)


# --- Prometheus in the Docker stack ---------------------------------------------------------


def docker_prometheus_config(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """The config K2's Prometheus image writes: the launcher's, in the context `k2-stack
    serve` builds from the prometheus container's env."""
    container = dev_spec().container("prometheus")
    for name in [n for n in os.environ if n.startswith(SERVE_ENV_PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in container.env.items():
        monkeypatch.setenv(name, value)
    return scrape_config(container_context(ServeSettings()))


def test_docker_prometheus_config_passes_promtool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(docker_prometheus_config(monkeypatch), sort_keys=False))
    # Checks the rule files it loads, too.
    promtool_check("config", path)


def test_docker_prometheus_scrapes_workers_by_dns_and_loads_the_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = docker_prometheus_config(monkeypatch)
    assert config["rule_files"] == [str(path) for path in rule_files()]
    jobs = {job["job_name"]: job for job in cast(list[dict[str, Any]], config["scrape_configs"])}
    assert jobs[INGEST_JOB]["dns_sd_configs"] == [
        {"names": ["ingest-worker"], "type": "A", "port": 19400}
    ]
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["prometheus:19090"]}]
    # Every worker answers that name and serves its metrics on that port.
    workers = [c for c in dev_spec().containers if c.service.startswith("ingest-worker-")]
    assert workers
    for worker in workers:
        assert "ingest-worker" in worker.aliases
        assert worker.command is not None
        assert worker.command[worker.command.index("--metrics-port") + 1] == "19400"


# --- Grafana in the Docker stack ------------------------------------------------------------


def grafana() -> ContainerSpec:
    return dev_spec().container("grafana")


def test_grafana_uploads_provisioning_and_every_dashboard() -> None:
    uploads = grafana().uploads
    datasources = f"{GRAFANA_PROVISIONING}/datasources/prometheus.yml"
    providers = f"{GRAFANA_PROVISIONING}/dashboards/k2.yml"
    dashboards = {f"{GRAFANA_DASHBOARDS}/{path.name}" for path in dashboard_files()}
    assert set(uploads) == {datasources, providers} | dashboards
    (provider,) = yaml.safe_load(uploads[providers])["providers"]
    assert provider["options"]["path"] == GRAFANA_DASHBOARDS
    (datasource,) = yaml.safe_load(uploads[datasources])["datasources"]
    # Grafana expands the URL from its env, which the spec sets.
    assert datasource["url"] == "${K2_PROMETHEUS_URL}"
    assert grafana().env["K2_PROMETHEUS_URL"] == "http://prometheus:19090"
    for path in sorted(dashboards):
        dashboard = json.loads(uploads[path])
        assert dashboard["panels"], path
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]


def test_grafana_admin_password_is_a_secret_env() -> None:
    spec = grafana()
    assert spec.secret_env == {"GF_SECURITY_ADMIN_PASSWORD"}
    assert spec.env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert spec.depends_on == (dev_spec().container("prometheus").name,)
