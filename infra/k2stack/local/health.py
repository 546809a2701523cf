"""Health probes: what "healthy" means for each kind of service, checked with a real client."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import psycopg
from confluent_kafka.admin import AdminClient

from k2.errors import StackError
from k2.settings import CatalogPrincipal
from k2stack import catalog_auth
from k2stack.local.context import StackContext
from k2stack.topology import LOOPBACK, POSTGRES_USER, Probe, ServiceName


def check(probe: Probe, service: ServiceName, ctx: StackContext) -> str | None:
    """Run a probe once. Returns None when healthy, else why not."""
    port = ctx.port(service, probe.port)
    try:
        if probe.kind == "tcp":
            with socket.create_connection((LOOPBACK, port), timeout=2):
                return None
        if probe.kind == "http":
            auth = ctx.credentials.registry_basic_auth() if probe.registry_auth else None
            base = f"http://{LOOPBACK}:{port}"
            headers = _catalog_headers(base, ctx) if probe.catalog_auth else {}
            response = httpx.get(f"{base}{probe.path}", timeout=3, auth=auth, headers=headers)
            if response.status_code == probe.expect_status:
                return None
            return f"GET {probe.path} answered {response.status_code}"
        if probe.kind == "kafka":
            # A refused connection makes librdkafka log to stderr: knock first.
            with socket.create_connection((LOOPBACK, port), timeout=2):
                pass
            # Not `k2.kafka`'s client: the stack's own settings decide, never K2_KAFKA_* in the
            # caller's shell (set for another stack). With SCRAM on (the cluster profile, K2's
            # images) the probe authenticates as the admin principal.
            security = ctx.kafka_admin_config()
            admin = AdminClient(
                {"bootstrap.servers": f"{LOOPBACK}:{port}", "socket.timeout.ms": 2000, **security}
            )
            admin.list_topics(timeout=3)
            return None
        if probe.kind == "postgres":
            with psycopg.connect(
                host=LOOPBACK,
                port=port,
                user=POSTGRES_USER,
                password=ctx.credentials.postgres_password,
                dbname="postgres",
                connect_timeout=3,
            ) as conn:
                conn.execute("SELECT 1")
            return None
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return f"unknown probe kind {probe.kind}"


def _catalog_headers(base: str, ctx: StackContext) -> Mapping[str, str]:
    """A bearer token for the catalog probe, as the read-only query principal (any principal
    proves the token endpoint and the signing key; query can do the least)."""
    credential = ctx.credentials.catalog_credential(CatalogPrincipal.QUERY)
    if credential is None:
        raise StackError("the stack has no catalog credentials (its manifest predates them)")
    return catalog_auth.bearer(catalog_auth.fetch_token(base, credential))


def describe(probe: Probe, service: ServiceName, ctx: StackContext) -> str:
    port = ctx.port(service, probe.port)
    target = f"{LOOPBACK}:{port}"
    if probe.kind == "http":
        target = f"http://{target}{probe.path} -> {probe.expect_status}"
    return f"{probe.kind} probe {target}"


def wait_healthy(
    probe: Probe,
    service: ServiceName,
    ctx: StackContext,
    alive: Callable[[], bool],
    log_file: Path,
) -> float:
    """Wait until the probe passes; return the seconds it took.

    Fails fast when the process dies, and after `probe.timeout_s` otherwise, with the probe
    and the log file named.
    """
    started = time.monotonic()
    last = "not probed yet"
    while time.monotonic() - started < probe.timeout_s:
        if not alive():
            raise StackError(
                f"{service.value} exited before becoming healthy ({describe(probe, service, ctx)});"
                f" last probe: {last}; see its log {log_file}:\n{tail(log_file)}"
            )
        outcome = check(probe, service, ctx)
        if outcome is None:
            return time.monotonic() - started
        last = outcome
        time.sleep(0.25)
    raise StackError(
        f"{service.value} did not become healthy within {probe.timeout_s:.0f}s "
        f"({describe(probe, service, ctx)}); last probe: {last}; see its log {log_file}:\n"
        f"{tail(log_file)}"
    )


def wait_kafka_cluster(ctx: StackContext, brokers: int, timeout_s: float = 120.0) -> float:
    """Wait until the cluster's metadata lists `brokers` brokers; return the seconds it took.

    Each node's own probe passes once it serves metadata, which may be before every other
    node has registered: a topic with replication factor 3 can only be created after.
    """
    started = time.monotonic()
    last = "not asked yet"
    while time.monotonic() - started < timeout_s:
        try:
            admin = AdminClient(
                {
                    "bootstrap.servers": f"{LOOPBACK}:{ctx.port(ServiceName.KAFKA, 'broker')}",
                    "socket.timeout.ms": 2000,
                    **ctx.kafka_admin_config(),
                }
            )
            found = len(admin.list_topics(timeout=3).brokers)
        except Exception as e:
            last = f"{type(e).__name__}: {e}"
        else:
            if found >= brokers:
                return time.monotonic() - started
            last = f"{found} of {brokers} brokers registered"
        time.sleep(0.5)
    raise StackError(f"the Kafka cluster did not form within {timeout_s:.0f}s: {last}")


def tail(log_file: Path, lines: int = 15) -> str:
    try:
        text = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])
