"""Prometheus (scrape config generated from the topology, K2's alert rules) and Grafana
(datasource and dashboards provisioned from the files in infra/grafana/)."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import yaml

from k2stack.observability import (
    GRAFANA_DIR,
    INGEST_JOB,
    WORKER_METRICS_PATH,
    WORKER_METRICS_PORT,
    dashboard_files,
    rule_files,
)
from k2stack.pulumi.outputs import PROMETHEUS_ALIAS
from k2stack.pulumi.service import ContainerSpec, Deployment, container, pull, volume
from k2stack.topology import GRAFANA, SERVICES, ServiceName

PROMETHEUS = SERVICES[ServiceName.PROMETHEUS]
CONFIG_PATH = "/etc/prometheus/prometheus.yml"
RULES_DIR = "/etc/prometheus/rules"
SCRAPE_INTERVAL = "5s"
WORKER_ALIAS = "ingest-worker"
GRAFANA_ALIAS = GRAFANA.name
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"
GRAFANA_DASHBOARDS = "/var/lib/grafana/dashboards/k2"


def prometheus_config() -> dict[str, object]:
    """Scrape Prometheus itself and every ingest worker replica.

    Workers share one network alias; Docker's DNS answers it with every replica's address,
    so `dns_sd_configs` finds however many replicas the stack runs.
    """
    port = PROMETHEUS.ports["http"]
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [f"{RULES_DIR}/*.yml"],
        "scrape_configs": [
            {
                "job_name": PROMETHEUS.name.value,
                "static_configs": [{"targets": [f"localhost:{port}"]}],
            },
            {
                "job_name": INGEST_JOB,
                "metrics_path": WORKER_METRICS_PATH,
                "dns_sd_configs": [
                    {"names": [WORKER_ALIAS], "type": "A", "port": WORKER_METRICS_PORT}
                ],
            },
        ],
    }


def prometheus_uploads() -> Mapping[str, str]:
    files = {CONFIG_PATH: yaml.safe_dump(prometheus_config(), sort_keys=False)}
    files.update({f"{RULES_DIR}/{path.name}": path.read_text() for path in rule_files()})
    return files


def grafana_uploads() -> Mapping[str, str]:
    provisioning = GRAFANA_DIR / "provisioning"
    files = {
        f"{GRAFANA_PROVISIONING}/{path.relative_to(provisioning)}": path.read_text()
        for path in sorted(provisioning.rglob("*.yml"))
    }
    files.update({f"{GRAFANA_DASHBOARDS}/{p.name}": p.read_text() for p in dashboard_files()})
    return files


class MonitoringComponent(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        deployment: Deployment,
        prometheus_url: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("k2:monitoring:Monitoring", name, None, opts)
        port = PROMETHEUS.ports["http"]
        retention = "2h" if deployment.config.ephemeral else "15d"
        self.prometheus = container(
            deployment,
            spec=PROMETHEUS,
            image=pull(deployment, PROMETHEUS, self).image_id,
            container_spec=ContainerSpec(
                service=PROMETHEUS_ALIAS,
                alias=PROMETHEUS_ALIAS,
                command=[
                    f"--config.file={CONFIG_PATH}",
                    "--storage.tsdb.path=/prometheus",
                    f"--storage.tsdb.retention.time={retention}",
                    f"--web.listen-address=:{port}",
                ],
                publish={port: port},
                volumes={"/prometheus": volume(deployment, "prometheus-data", self)},
                uploads=prometheus_uploads(),
            ),
            parent=self,
        )
        grafana_port = GRAFANA.ports["http"]
        self.grafana = container(
            deployment,
            spec=GRAFANA,
            image=pull(deployment, GRAFANA, self).image_id,
            container_spec=ContainerSpec(
                service=GRAFANA_ALIAS,
                alias=GRAFANA_ALIAS,
                envs=pulumi.Output.all(
                    deployment.secrets.grafana_admin_password, prometheus_url
                ).apply(
                    lambda v: [
                        f"GF_SERVER_HTTP_PORT={grafana_port}",
                        "GF_SECURITY_ADMIN_USER=admin",
                        f"GF_SECURITY_ADMIN_PASSWORD={v[0]}",
                        "GF_AUTH_ANONYMOUS_ENABLED=false",
                        "GF_ANALYTICS_REPORTING_ENABLED=false",
                        f"K2_PROMETHEUS_URL={v[1]}",
                    ]
                ),
                publish={grafana_port: grafana_port},
                volumes={"/var/lib/grafana": volume(deployment, "grafana-data", self)},
                uploads=grafana_uploads(),
            ),
            parent=self,
            depends_on=[self.prometheus],
        )
        self.register_outputs({"prometheus": self.prometheus.name, "grafana": self.grafana.name})
