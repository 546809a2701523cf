"""Prometheus from Debian's package, extracted (never started as a system service).

The scrape config is generated from the topology; K2's workers announce their metrics
endpoints by dropping a file into `targets/` (file-based service discovery), so a worker on
any port is scraped within seconds without restarting Prometheus.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from k2stack.local.context import StackContext
from k2stack.local.install import debian_package
from k2stack.local.launcher import LaunchCommand, Launcher
from k2stack.observability import INGEST_JOB, rule_files
from k2stack.topology import LOOPBACK, SERVICES, TOPOLOGY, ServiceName

P = ServiceName.PROMETHEUS
DEBIAN_VERSION = "2.42.0+ds-5+deb12u1"
SCRAPE_INTERVAL = "5s"


def prometheus_root(ctx: StackContext) -> Path:
    return debian_package(ctx.cache_dir, "prometheus", DEBIAN_VERSION)


def targets_dir(ctx: StackContext) -> Path:
    """Where workers register their metrics endpoints (one JSON file each)."""
    return ctx.service_dir(P) / "targets"


def scrape_config(ctx: StackContext) -> dict[str, object]:
    """The Prometheus config for a stack: the topology's metrics endpoints plus K2's workers."""
    jobs: list[dict[str, object]] = []
    for spec in TOPOLOGY:
        if spec.metrics is None:
            continue
        jobs.append(
            {
                "job_name": spec.name.value,
                "metrics_path": spec.metrics.path,
                "static_configs": [{"targets": [ctx.address(spec.name, spec.metrics.port)]}],
            }
        )
    workers: dict[str, object] = {
        "job_name": INGEST_JOB,
        "file_sd_configs": [
            {"files": [str(targets_dir(ctx) / "*.json")], "refresh_interval": "5s"}
        ],
    }
    if ctx.worker_alias is not None:
        # In Docker every worker replica answers the shared alias: DNS finds however many run.
        workers["dns_sd_configs"] = [
            {"names": [ctx.worker_alias], "type": "A", "port": ctx.worker_metrics_port}
        ]
    jobs.append(workers)
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        # The same alert rules the Docker stack's Prometheus loads (infra/prometheus/rules).
        "rule_files": [str(path) for path in rule_files()],
        "scrape_configs": jobs,
    }


class PrometheusLauncher(Launcher):
    spec = SERVICES[P]

    def install(self, ctx: StackContext) -> None:
        prometheus_root(ctx)

    def artifacts(self, ctx: StackContext) -> tuple[Path, ...]:
        return (prometheus_root(ctx),)

    def prepare(self, ctx: StackContext) -> None:
        targets_dir(ctx).mkdir(parents=True, exist_ok=True)
        ctx.data_dir(P).mkdir(parents=True, exist_ok=True)
        config = ctx.service_dir(P) / "prometheus.yml"
        config.write_text(yaml.safe_dump(scrape_config(ctx), sort_keys=False))

    def command(self, ctx: StackContext) -> LaunchCommand:
        home = ctx.service_dir(P)
        return LaunchCommand(
            argv=(
                str(prometheus_root(ctx) / "usr" / "bin" / "prometheus"),
                f"--config.file={home / 'prometheus.yml'}",
                f"--storage.tsdb.path={ctx.data_dir(P)}",
                f"--web.listen-address={ctx.bind_host}:{ctx.port(P, 'http')}",
                "--storage.tsdb.retention.time=7d",
                "--web.enable-lifecycle",
            ),
            cwd=home,
        )


def register_target(ctx: StackContext, name: str, port: int, labels: dict[str, str]) -> Path:
    """Have Prometheus scrape a K2 process's metrics at 127.0.0.1:`port` (file discovery)."""
    targets_dir(ctx).mkdir(parents=True, exist_ok=True)
    path = targets_dir(ctx) / f"{name}.json"
    entry = [{"targets": [f"{LOOPBACK}:{port}"], "labels": labels}]
    scratch = path.with_suffix(".tmp")
    # Written whole, then renamed: Prometheus never reads a half-written file.
    scratch.write_text(json.dumps(entry))
    scratch.replace(path)
    return path


def unregister_target(ctx: StackContext, name: str) -> None:
    (targets_dir(ctx) / f"{name}.json").unlink(missing_ok=True)
