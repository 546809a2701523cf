"""Dashboards and alerts that cannot lie: every panel query and every alert rule, run against
the local stack's real Prometheus while a real ingest worker runs, parses and returns series."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from k2 import kafka
from k2.bootstrap import bootstrap_stack
from k2.children import k2_command, stop
from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.delivery import produce_all
from k2.generate import GeneratorConfig, SyntheticMarket
from k2.net import free_port
from k2.replay.producer import RecordPublisher
from k2.settings import Endpoints
from k2stack.local.services.prometheus import register_target, unregister_target
from k2stack.local.stack import LocalStack
from k2stack.observability import INGEST_JOB, Query, dashboard_queries, rule_queries

pytestmark = [
    pytest.mark.integration,
    pytest.mark.local_stack,
    pytest.mark.xdist_group("dashboards"),
]

# An alert's threshold filters its series away while all is well; `bool` keeps them (as 0/1),
# so the test still sees that the expression selects real series.
_COMPARISON = re.compile(r"\s(==|!=|>=|<=|>|<)\s*(-?[0-9][0-9.eE+]*)(?=\s|\)|$)")


def keep_series(expr: str) -> str:
    """Every comparison with a threshold made a `bool` one (an `and` still needs both sides)."""
    return _COMPARISON.sub(r" \1 bool \2", " ".join(expr.split()))


def _query(stack: Endpoints, expr: str) -> dict[str, object]:
    response = httpx.get(f"{stack.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
    body: dict[str, object] = response.json()
    return body


@pytest.fixture(scope="module")
def live_worker(stack: Endpoints, stack_dir: Path | None) -> Iterator[str]:
    """A real `k2 ingest run` for trades, scraped by the stack's Prometheus, fed real records."""
    if stack_dir is None:
        pytest.skip("bring-your-own stack: its Prometheus discovers workers its own way")
    prefix = f"dash{os.getpid()}_"
    catalogue: Catalogue = load_catalogue().with_prefix(prefix)
    bootstrap_stack(catalogue, stack)
    port = free_port()
    ctx = LocalStack(stack_dir, log=lambda _: None).context()
    worker = subprocess.Popen(
        [
            *k2_command(),
            *("ingest", "run", "--table", "trades", "--prefix", prefix),
            *("--metrics-port", str(port)),
        ],
        env={**os.environ, **stack.as_env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    register_target(ctx, f"test-{prefix}", port, {"table": "trades"})
    try:
        with RecordPublisher(
            stack.kafka_bootstrap_servers, stack.schema_registry_url, catalogue
        ) as publisher:
            for dataset, record in SyntheticMarket(GeneratorConfig(symbols=5)).take(2_000):
                if dataset == "trades":
                    publisher.publish(dataset, record)
            publisher.flush()
        # One undecodable record, so the dead-letter series exist too.
        raw = kafka.producer(stack.kafka_bootstrap_servers)  # raw bytes, no serializer
        produce_all(raw, catalogue.dataset("trades").topic.name, [(b"BHP", b"not avro")])
        _wait_for_scrapes(stack, prefix, port)
        yield prefix
    finally:
        unregister_target(ctx, f"test-{prefix}")
        stop(worker, 30)


def _wait_for_scrapes(stack: Endpoints, prefix: str, port: int) -> None:
    """Until Prometheus holds enough samples of THIS test's worker for rate() over its rows."""
    deadline = time.monotonic() + 120
    mine = f'job="{INGEST_JOB}", instance="127.0.0.1:{port}"'
    while time.monotonic() < deadline:
        samples = _query(stack, f"count_over_time(k2_records_written_total{{{mine}}}[1m])")
        written = _query(stack, f"k2_records_written_total{{{mine}}}")
        counts = samples.get("data", {}).get("result", [])  # type: ignore[union-attr]
        rows = written.get("data", {}).get("result", [])  # type: ignore[union-attr]
        if counts and float(counts[0]["value"][1]) >= 3 and rows and float(rows[0]["value"][1]) > 0:
            return
        time.sleep(2)
    pytest.fail(f"Prometheus never scraped the worker of {prefix} with committed records")


QUERIES = dashboard_queries() + rule_queries()


@pytest.mark.parametrize("query", QUERIES, ids=[q.source for q in QUERIES])
def test_query_parses_and_returns_series(query: Query, stack: Endpoints, live_worker: str) -> None:
    expr = keep_series(query.expr)
    body = _query(stack, expr)
    assert body["status"] == "success", f"{query.source}: {body}"
    result = body["data"]["result"]  # type: ignore[index]
    assert result, f"{query.source}: `{expr}` returned no series while ingest runs"


def test_keep_series_rewrites_only_a_trailing_threshold() -> None:
    assert keep_series("sum(x) > 100000") == "sum(x) > bool 100000"
    assert keep_series("up == 0") == "up == bool 0"
    assert keep_series("rate(x[5m])") == "rate(x[5m])"
    assert keep_series("sum(a) > 0\nand sum(b) == 0") == "sum(a) > bool 0 and sum(b) == bool 0"
