"""`k2-stack up --backend docker` for real: the dev spec applied straight to the engine.

The same `stack_spec` the Pulumi program declares (tests/infra prove the equality), applied
without Pulumi: every container healthy, the printed `K2_*` endpoints answer from the host,
`down --purge` leaves nothing behind.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import AdminClient

from k2.catalog import load_catalog
from k2.settings import Endpoints
from k2stack.docker.apply import docker_client, leftovers
from k2stack.docker.backend import DockerStack
from k2stack.pulumi.automation import generated_secrets, required_secret_keys
from k2stack.pulumi.stacks import free_port_offset

# With the cluster security module: stacks of their own come up one at a time beside the
# session's ci stack (three at once overloaded two cores: a registry took 124 s to start).
pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("docker-own-stacks")]


def test_docker_backend_stands_the_dev_spec_up_and_removes_it(tmp_path: Path) -> None:
    prefix = f"k2t-{uuid.uuid4().hex[:6]}"
    stack = DockerStack(tmp_path / "docker-stack", log=lambda _: None)
    config = {"k2:namePrefix": prefix, "k2:grafana": "false"}
    secrets = generated_secrets(required_secret_keys(config))
    offset = free_port_offset("dev", config, secrets)
    try:
        env = stack.up(name_prefix=prefix, port_offset=offset)
        assert stack.manifest_path.stat().st_mode & 0o777 == 0o600
        rows = stack.status()
        assert rows
        assert all(r.ok for r in rows), rows
        assert any(r.name.endswith("-bootstrap") and r.state == "exited (0)" for r in rows)
        endpoints = Endpoints.from_env(env)
        admin = AdminClient({"bootstrap.servers": endpoints.kafka_bootstrap_servers})
        topics = admin.list_topics(timeout=10).topics
        assert "k2.trades" in topics  # the stack's bootstrap job ran
        subjects = httpx.get(endpoints.schema_registry_url + "/subjects", timeout=10)
        assert subjects.status_code == 200
        catalog = load_catalog(endpoints)
        assert ("market", "trades") in catalog.list_tables("market")
        assert httpx.get(endpoints.prometheus_url + "/-/ready", timeout=10).status_code == 200
    finally:
        left = stack.down(purge=True)
    assert left == []
    assert leftovers(docker_client(), prefix) == []
