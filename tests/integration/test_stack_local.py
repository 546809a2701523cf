"""The local backend itself: health, loopback binding, credentials, lifecycle and failures."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import botocore.exceptions
import httpx
import psycopg
import pytest

from k2.errors import StackError
from k2.settings import Endpoints, operator_env_names
from k2stack.local import processes
from k2stack.local.stack import LocalStack
from k2stack.topology import POSTGRES_USER, TOPOLOGY, ServiceName

pytestmark = [pytest.mark.integration, pytest.mark.local_stack]


def _listening_addresses(pid: int) -> set[str]:
    """Every TCP address the process (or its group) listens on, from `ss`."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found: set[str] = set()
    for line in out.splitlines():
        if f"pid={pid}," in line:
            found.add(line.split()[3])
    return found


def test_every_service_is_healthy(stack: Endpoints, stack_dir: Path | None) -> None:
    if stack_dir is None:
        pytest.skip("bring-your-own stack: the local backend's status does not apply")
    rows = LocalStack(stack_dir, log=lambda _: None).status()
    assert {row.service for row in rows} == {spec.name for spec in TOPOLOGY}
    unhealthy = [(row.service, row.detail) for row in rows if not row.healthy]
    assert unhealthy == []


def test_every_service_listens_on_loopback_only(stack: Endpoints, stack_dir: Path | None) -> None:
    if stack_dir is None:
        pytest.skip("bring-your-own stack")
    for row in LocalStack(stack_dir, log=lambda _: None).status():
        assert row.pid is not None
        addresses = _listening_addresses(row.pid)
        assert addresses, f"{row.service} listens on nothing?"
        outside = {a for a in addresses if not a.startswith("127.0.0.1:")}
        assert outside == set(), f"{row.service} listens beyond loopback: {outside}"


def test_stack_env_prints_exactly_the_settings_names(
    stack: Endpoints, stack_dir: Path | None
) -> None:
    if stack_dir is None:
        pytest.skip("bring-your-own stack")
    out = subprocess.run(
        [sys.executable, "-m", "k2stack.cli", "env", "--state-dir", str(stack_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    keys = [line.split("=", 1)[0] for line in out.splitlines()]
    assert sorted(keys) == sorted([*operator_env_names(), "K2_STACK_DIR"])
    env = dict(line.split("=", 1) for line in out.splitlines())
    assert env["K2_KAFKA_BOOTSTRAP_SERVERS"] == stack.kafka_bootstrap_servers
    assert env["K2_SCHEMA_REGISTRY_URL"].endswith("/apis/ccompat/v7")


def test_postgres_serves_both_databases_and_refuses_a_wrong_password(stack: Endpoints) -> None:
    dsn = stack.postgres_dsn.get_secret_value()
    with psycopg.connect(dsn) as conn:
        names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    assert {"iceberg_catalog", "schema_registry"} <= names
    wrong = re.sub(r"://([^:]+):[^@]+@", r"://\1:not-the-password@", dsn)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5)
    assert POSTGRES_USER in dsn


def _s3(stack: Endpoints, key: str, secret: str) -> object:
    return boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )


def test_s3_put_get_list_and_refuses_a_wrong_key(stack: Endpoints, unique: str) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=stack.s3_access_key_id,
        aws_secret_access_key=stack.s3_secret_access_key.get_secret_value(),
        region_name="us-east-1",
    )
    key = f"{unique}/probe.bin"
    body = bytes(range(256)) * 64
    s3.put_object(Bucket="warehouse", Key=key, Body=body)
    assert s3.get_object(Bucket="warehouse", Key=key)["Body"].read() == body
    listed = s3.list_objects_v2(Bucket="warehouse", Prefix=unique)
    assert [o["Key"] for o in listed["Contents"]] == [key]
    intruder = boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id="intruder",
        aws_secret_access_key="not-the-secret-key",
        region_name="us-east-1",
    )
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        intruder.get_object(Bucket="warehouse", Key=key)
    assert refused.value.response["Error"]["Code"] in {"InvalidAccessKeyId", "AccessDenied"}


def test_prometheus_answers_queries_and_scrapes_itself(stack: Endpoints) -> None:
    response = httpx.get(f"{stack.prometheus_url}/api/v1/query", params={"query": "up"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    # Right after start, discovery may not have run yet: give it a few scrape intervals.
    deadline = time.monotonic() + 60
    jobs: set[str] = set()
    while "prometheus" not in jobs and time.monotonic() < deadline:
        targets = httpx.get(f"{stack.prometheus_url}/api/v1/targets").json()["data"]
        jobs = {t["labels"]["job"] for t in targets["activeTargets"] if t["health"] == "up"}
        time.sleep(1)
    assert "prometheus" in jobs


# -- lifecycle and failure modes, on small private stacks (PostgreSQL + SeaweedFS only) --------

SMALL = (ServiceName.POSTGRES, ServiceName.SEAWEEDFS)


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A scratch directory PostgreSQL's OS user can enter (pytest's own is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="k2-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _small_stack(tmp_path: Path) -> LocalStack:
    state = tmp_path / "stack"
    return LocalStack(state, ephemeral_ports=True, only=SMALL, log=lambda _: None)


def _pids(stack: LocalStack) -> dict[ServiceName, int]:
    ctx = stack.context()
    out: dict[ServiceName, int] = {}
    for name in SMALL:
        proc = processes.running(ctx.pid_file(name))
        if proc is not None:
            out[name] = proc.pid
    return out


def test_up_twice_is_harmless_down_stops_by_pid_and_data_survives(tmp_path: Path) -> None:
    small = _small_stack(tmp_path)
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        small.up()
        first = _pids(small)
        assert set(first) == set(SMALL)
        small.up()
        assert _pids(small) == first, "a second up must not restart anything"
        ctx = small.context()
        dsn = (
            f"postgresql://{POSTGRES_USER}:{ctx.credentials.postgres_password}"
            f"@127.0.0.1:{ctx.port(ServiceName.POSTGRES, 'sql')}/iceberg_catalog"
        )
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE survives (v int)")
            conn.execute("INSERT INTO survives VALUES (42)")
        assert set(small.down()) == set(SMALL)
        assert _pids(small) == {}
        assert bystander.poll() is None, "down must stop only the stack's own processes"
        small.up()
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT v FROM survives").fetchall() == [(42,)]
    finally:
        small.down(purge=True)
        bystander.kill()
        bystander.wait()
    assert not (tmp_path / "stack").exists()


def test_a_taken_port_fails_clearly_and_leaves_nothing_running(tmp_path: Path) -> None:
    small = _small_stack(tmp_path)
    ctx = small.context() if small.manifest_path.exists() else None
    assert ctx is None
    small.install()  # writes the manifest with the ports it will use
    ctx = small.context()
    s3_port = ctx.port(ServiceName.SEAWEEDFS, "s3")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", s3_port))
        squatter.listen()
        with pytest.raises(StackError, match=rf"seaweedfs cannot start: .*s3={s3_port}"):
            small.up()
    assert _pids(small) == {}, "postgres, started first, must have been stopped again"
    small.down(purge=True)


def test_a_service_that_dies_names_itself_its_probe_and_its_log(tmp_path: Path) -> None:
    small = LocalStack(
        tmp_path / "stack", ephemeral_ports=True, only=(ServiceName.POSTGRES,), log=lambda _: None
    )
    small.install()
    ctx = small.context()
    # A cluster directory PostgreSQL cannot start from.
    data = ctx.data_dir(ServiceName.POSTGRES)
    small.launchers()[ServiceName.POSTGRES].prepare(ctx)
    (data / "global" / "pg_control").write_bytes(b"corrupt")
    with pytest.raises(StackError) as failure:
        small.up()
    message = str(failure.value)
    assert "postgres exited before becoming healthy" in message
    assert "postgres probe" in message
    assert str(ctx.log_file(ServiceName.POSTGRES)) in message
    assert _pids(small) == {}
    small.down(purge=True)
