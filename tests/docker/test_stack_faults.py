"""Faults of the Docker stack itself: its own worker container killed, its Kafka restarted.

These run against the ci stack `task test:docker` brings up through the Pulumi engine (its
`K2_*` outputs, `K2_DOCKER_STACK_PREFIX`, `DOCKER_HOST`). The stack's own ingest worker
containers consume the default catalogue's topics, so these tests publish there, under a
run id of their own, and judge only their own trades: each must be in the table exactly once.
They share those topics, so they run one after the other (one xdist group).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import docker
import pytest
from docker.models.containers import Container
from pyiceberg.expressions import StartsWith

from k2.catalog import load_catalog
from k2.contracts.catalogue import load_catalogue
from k2.settings import Endpoints
from k2stack.docker.spec import STACK_LABEL
from tests.reliability.faults_support import (
    FeedProducer,
    Lake,
    record_figures,
    v2_feed,
    wait_until,
)

pytestmark = [pytest.mark.docker_stack, pytest.mark.xdist_group("docker-stack-default-topics")]

PREFIX_ENV = "K2_DOCKER_STACK_PREFIX"
COUNT = 120_000
RATE = 12_000.0
SETTLE_S = 240.0


@pytest.fixture(scope="module")
def prefix() -> str:
    value = os.environ.get(PREFIX_ENV)
    if not value:
        pytest.fail(
            f"{PREFIX_ENV} is not set: these tests run against the Docker stack of `task test:docker`"
        )
    return value


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    engine = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], version="auto")
    yield engine
    engine.close()


@pytest.fixture(autouse=True)
def stack_healthy(prefix: str, client: docker.DockerClient) -> None:
    """Each fault starts from a whole stack: every service and worker container healthy."""
    names = [
        c.name
        for c in client.containers.list(all=True, filters={"label": f"{STACK_LABEL}={prefix}"})
        if c.attrs["Config"].get("Healthcheck")
    ]
    assert names
    wait_until(lambda: all(healthy(client, n) for n in names), 180, "every container healthy")


@pytest.fixture
def lake(stack: Endpoints) -> Iterator[Lake]:
    """The default trades dataset: the one the stack's bootstrap job made and its workers read."""
    catalog = load_catalog(stack)
    yield Lake(stack, "", load_catalogue().dataset("trades"), catalog)
    catalog.close()  # pyiceberg's public lifecycle: closes the REST session


def run_ids(lake: Lake, run: str) -> Counter[str]:
    """This run's trade_ids in the table, with how often each appears."""
    scan = lake.table().scan(row_filter=StartsWith("trade_id", run), selected_fields=("trade_id",))
    return Counter(str(v) for v in scan.to_arrow().column("trade_id").to_pylist())


def container(client: docker.DockerClient, name: str) -> Container:
    return client.containers.get(name)


def healthy(client: docker.DockerClient, name: str) -> bool:
    state = container(client, name).attrs["State"]
    return bool(state["Running"]) and (state.get("Health") or {}).get("Status") == "healthy"


def start_feed(lake: Lake, run: str, when_rows: int) -> tuple[FeedProducer, threading.Thread]:
    """Start producing the run's feed; return once `when_rows` of it are in the table."""
    feed = v2_feed(lake, run, COUNT)
    producer = FeedProducer(lake)

    def paced() -> None:
        try:
            producer.paced(feed, RATE)
        except Exception as e:  # a fatal producer error: judge() must see it, not a lost thread
            producer.failed.append(f"producer thread died: {e!r}")
            raise

    thread = threading.Thread(target=paced, daemon=True)
    thread.start()
    wait_until(lambda: sum(run_ids(lake, run).values()) >= when_rows, 120, f"{when_rows} rows")
    return producer, thread


def judge(
    lake: Lake,
    run: str,
    producer: FeedProducer,
    test: str,
    client: docker.DockerClient,
    prefix: str,
    **figures: float,
) -> None:
    try:
        wait_until(lambda: len(run_ids(lake, run)) >= COUNT, SETTLE_S, f"all {COUNT} trades")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{diagnosis(lake, run, producer, client, prefix)}") from e
    time.sleep(3)  # one more commit interval: a late duplicate would show now
    ids = run_ids(lake, run)
    lost = COUNT - len(ids)
    duplicated = sum(n - 1 for n in ids.values())
    record_figures(test, produced=COUNT, lost=lost, duplicated=duplicated, **figures)
    assert producer.failed == []
    assert len(producer.acked) == COUNT
    assert (lost, duplicated) == (0, 0)


def diagnosis(
    lake: Lake, run: str, producer: FeedProducer, client: docker.DockerClient, prefix: str
) -> str:
    """What a stalled run looks like from outside: the table, the producer, the trades worker."""
    ids = run_ids(lake, run)
    worker = container(client, f"{prefix}-ingest-worker-trades-0")
    state = worker.attrs["State"]
    logs = worker.logs(tail=60).decode(errors="replace")
    return (
        f"in table: {len(ids)} distinct, {sum(ids.values())} rows; producer: "
        f"{len(producer.acked)} acked, {len(producer.offered)} offered, "
        f"{producer.client_errors} client errors, failed: {producer.failed[:5]}; "
        f"table counts: {lake.counts()}; worker {worker.name}: status={state['Status']} "
        f"health={(state.get('Health') or {}).get('Status')} restarts={worker.attrs['RestartCount']}"
        f"\n--- its last log lines ---\n{logs}"
    )


def test_worker_container_killed_with_sigkill_loses_and_duplicates_nothing(
    lake: Lake, prefix: str, client: docker.DockerClient
) -> None:
    name = f"{prefix}-ingest-worker-trades-0"
    restarts = container(client, name).attrs["RestartCount"]
    run = f"dkw{uuid.uuid4().hex[:8]}"
    producer, thread = start_feed(lake, run, when_rows=20_000)
    killed_at = time.monotonic()
    # kill -9 of the worker's process (the container's PID 1, seen from the host), as a crash
    # or the OOM killer would: not `docker kill`, which Docker counts as a deliberate stop and
    # never restarts.
    os.kill(container(client, name).attrs["State"]["Pid"], signal.SIGKILL)
    # Docker's restart policy brings the same container back; it must get its partitions.
    wait_until(
        lambda: container(client, name).attrs["RestartCount"] > restarts and healthy(client, name),
        120,
        f"{name} restarted and healthy",
    )
    back_after = time.monotonic() - killed_at
    thread.join(timeout=SETTLE_S)
    judge(
        lake,
        run,
        producer,
        "docker_worker_kill9",
        client,
        prefix,
        healthy_again_s=round(back_after, 1),
    )


def test_kafka_container_restart_loses_and_duplicates_nothing(
    lake: Lake, prefix: str, client: docker.DockerClient
) -> None:
    name = f"{prefix}-kafka-0"
    run = f"dkk{uuid.uuid4().hex[:8]}"
    producer, thread = start_feed(lake, run, when_rows=20_000)
    began = time.monotonic()
    container(client, name).restart(timeout=20)
    wait_until(lambda: healthy(client, name), 180, f"{name} healthy again")
    back_after = time.monotonic() - began
    thread.join(timeout=SETTLE_S)
    judge(
        lake,
        run,
        producer,
        "docker_kafka_restart",
        client,
        prefix,
        healthy_again_s=round(back_after, 1),
    )
