"""Helpers of the failover tests on the cluster profile: the cluster, a run under load, figures.

The cluster is a local stack of the `cluster` profile (three combined KRaft nodes, RF 3,
min ISR 2, two registry instances), started once for the test session. Each test starts from
a whole cluster (every process up, every broker registered), writes under load from an
idempotent acks=all producer while a fault happens, and ends with the verdict by identity and
its measured unavailability:

- longest gap between two Iceberg commits (the table's own snapshot timestamps);
- longest gap between two producer acknowledgements, delivery failures (must be none) and the
  errors librdkafka reported while it retried by itself.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from k2.settings import Endpoints
from k2stack import kafka_security as sasl
from k2stack.local.stack import LocalStack
from k2stack.topology import LAYOUTS, Profile, ServiceName

from .faults_support import (
    FeedProducer,
    Lake,
    WorkerProcess,
    offset_chain_problems,
    prefixed_lake,
    stop_all,
    v2_feed,
    verdict,
    wait_until,
)
from .kafka_principals import client_settings

LAYOUT = LAYOUTS[Profile.CLUSTER]
BROKERS = tuple(f"kafka-{i}" for i in range(LAYOUT.kafka_brokers))
REGISTRIES = tuple(f"registry-{i}" for i in range(LAYOUT.registry_replicas))
RATE = 1_000  # records/s offered by the producer for the whole run
# Small, frequent commits, so a gap in them shows the fault and not the batching.
WORKER = {"max_records": "5000", "max_age_s": "0.5", "max_backoff_s": "2"}
# Liveness bounds (how long a step may take on a loaded 2-core machine), never speed targets.
RECOVERY_S = 180.0


@contextmanager
def cluster_stack() -> Iterator[Cluster]:
    """A cluster-profile local stack on free ports in a temporary directory; purged after."""
    # PostgreSQL runs as its own OS user: every directory above its data must be traversable.
    root = Path(tempfile.mkdtemp(prefix="k2-cluster-stack-"))
    root.chmod(0o755)
    log_file = root / "stack.log"

    def log(line: str) -> None:
        with log_file.open("a") as handle:
            handle.write(line + "\n")

    stack = LocalStack(root / "stack", ephemeral_ports=True, log=log, profile=Profile.CLUSTER)
    began = time.monotonic()
    try:
        endpoints = Endpoints.from_env(stack.up())
        yield Cluster(stack, endpoints, up_s=time.monotonic() - began)
    finally:
        stack.down(purge=True)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Cluster:
    """The cluster-profile stack of the session, with what the failover tests ask of it."""

    stack: LocalStack
    endpoints: Endpoints
    up_s: float
    _admin: AdminClient | None = None

    @property
    def passwords(self) -> dict[str, str]:
        """Each Kafka principal's SCRAM password, by user (the profile runs SASL/SCRAM)."""
        return dict(self.stack.context().credentials.kafka_scram_passwords)

    def client(self, user: str | None, password: str | None = None) -> dict[str, str]:
        """librdkafka settings for `user` (None: no authentication at all)."""
        bootstrap = self.endpoints.kafka_bootstrap_servers
        return client_settings(bootstrap, self.passwords, user, password)

    def kafka_env(self, principal: sasl.Principal = sasl.ADMIN) -> dict[str, str]:
        """The `K2_KAFKA_*` security variables of a K2 process acting as `principal`."""
        return sasl.client_env(principal, self.passwords[principal.user])

    def admin(self) -> AdminClient:
        """One admin client for the session (librdkafka follows brokers dying and returning;
        a new client per poll would cost a connection set each time)."""
        if self._admin is None:
            login = sasl.client_config(sasl.ADMIN.user, self.passwords[sasl.ADMIN.user])
            self._admin = AdminClient(
                {"bootstrap.servers": self.endpoints.kafka_bootstrap_servers, **login}
            )
        return self._admin

    def make_whole(self) -> None:
        """Start whatever a previous test left stopped; wait until every broker is back."""
        for name in self.stack.process_names():
            if self.stack.pid(name) is None:
                self.stack.start(name)
        wait_until(lambda: len(self.registered_brokers()) == len(BROKERS), RECOVERY_S, "3 brokers")

    def registered_brokers(self) -> set[int]:
        """Node ids of the brokers the cluster's metadata lists now."""
        try:
            return set(self.admin().list_topics(timeout=5).brokers)
        except KafkaException:  # no broker answered in time: none registered, ask again
            return set()

    def leaders(self, topic: str) -> dict[int, int]:
        """Partition -> node id of its leader (-1 while it has none)."""
        metadata = self.admin().list_topics(topic, timeout=10)
        return {p.id: p.leader for p in metadata.topics[topic].partitions.values()}

    def replicas(self, topic: str) -> set[int]:
        """The distinct replica counts of `topic`'s partitions."""
        metadata = self.admin().list_topics(topic, timeout=10)
        return {len(p.replicas) for p in metadata.topics[topic].partitions.values()}

    def isr_complete(self, *topics: str) -> bool:
        """Every partition of `topics` has all its replicas in sync (a restarted broker
        caught up)."""
        try:
            metadata = self.admin().list_topics(timeout=5)
        except KafkaException:  # metadata unavailable for a moment: not yet
            return False
        for topic in topics:
            for partition in metadata.topics[topic].partitions.values():
                if len(partition.isrs) < len(partition.replicas) or partition.leader < 0:
                    return False
        return True

    def quorum_views(self) -> dict[int, tuple[int, int]]:
        """Each node's view of the KRaft quorum, (leader id, leader epoch), as it persists it.

        KRaft returns a random broker as "the controller" to Admin clients; the active
        controller is the quorum leader, which every voter records in its
        `__cluster_metadata-0/quorum-state` file.
        """
        views: dict[int, tuple[int, int]] = {}
        for index, name in enumerate(BROKERS):
            path = self.stack.process_context(name).data_dir(ServiceName.KAFKA)
            try:
                state = json.loads((path / "__cluster_metadata-0" / "quorum-state").read_text())
            except (OSError, ValueError):
                continue  # being rewritten at this very moment: ask again
            views[index] = (int(state["leaderId"]), int(state["leaderEpoch"]))
        return views

    def active_controller(self) -> tuple[int, int]:
        """(node id, epoch) of the quorum leader: the newest epoch any voter has recorded."""
        leader, epoch = max(self.quorum_views().values(), key=lambda view: view[1])
        return leader, epoch


@dataclass
class LoadRun:
    """A trades lake (RF 3) with a producer offering RATE records/s and ingest workers."""

    cluster: Cluster
    lake: Lake
    logs: Path
    feed_ids: list[str]
    producer: FeedProducer
    workers: list[WorkerProcess] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    began: float = field(default_factory=time.monotonic)

    @property
    def topics(self) -> tuple[str, str]:
        return self.lake.dataset.topic.name, self.lake.dataset.dlq_topic

    def start_worker(self) -> WorkerProcess:
        worker = WorkerProcess(
            self.lake, self.logs / f"worker-{len(self.workers)}.log", WORKER, metrics=True
        )
        self.workers.append(worker)
        return worker

    def tails(self, lines: int = 25) -> str:
        """The last lines of every worker's log (what a failure message needs)."""
        return "\n".join(
            f"--- {w.log_file.name} (alive: {w.alive()}):\n"
            + "\n".join(w.log_text().splitlines()[-lines:])
            for w in self.workers
        )

    def wait_committed(self, records: int, what: str) -> None:
        wait_until(lambda: self.lake.consumed() >= records, RECOVERY_S, what)

    def finish(self) -> dict[str, Any]:
        """Stop offering, flush, wait for every offered record in the table, stop the
        workers; return the verdict and unavailability figures (assertions are the test's)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(RECOVERY_S)
        offered = list(self.producer.offered)
        try:
            self.wait_committed(len(offered), f"all {len(offered)} offered records committed")
        except AssertionError as e:
            raise AssertionError(f"{e}; table holds {self.lake.consumed()}\n{self.tails()}") from e
        exits = [worker.stop() for worker in self.workers if worker.alive()]
        result = verdict(self.lake, set(offered))
        return {
            **result.figures(),
            "examples": result.examples,
            "offered": len(offered),
            "acked": len(self.producer.acked),
            "acked_all_offered": self.producer.acked == set(offered),
            "delivery_failures": len(self.producer.failed),
            "delivery_failure_examples": self.producer.failed[:3],
            "producer_client_errors": self.producer.client_errors,
            "longest_ack_gap_s": round(longest_gap([t for t, _ in self.producer.acks]), 2),
            "longest_commit_gap_s": round(longest_commit_gap(self.lake), 2),
            "table_counts": self.lake.counts(),
            "offset_chain_problems": offset_chain_problems(self.lake)[:5],
            "worker_exits": exits,
            "load_s": round(time.monotonic() - self.began, 1),
        }


@contextmanager
def load_run(cluster: Cluster, logs: Path, seconds: float, workers: int = 1) -> Iterator[LoadRun]:
    """A fresh RF-3 lake, `workers` ingest workers, a producer offering RATE/s for up to
    `seconds` (stopped earlier by `finish`); the workers are reaped however the test ends."""
    cluster.make_whole()
    # The catalogue names no replication: topics get the cluster's default, 3.
    with prefixed_lake(cluster.endpoints, "cl") as lake:
        for topic in (lake.dataset.topic.name, lake.dataset.dlq_topic):
            assert cluster.replicas(topic) == {LAYOUT.replication_factor}, topic
        feed = v2_feed(lake, uuid.uuid4().hex[:8], int(RATE * seconds))
        run = LoadRun(cluster, lake, logs, feed.ids, FeedProducer(lake))
        try:
            for _ in range(workers):
                run.start_worker()
            started = threading.Event()
            run._thread = threading.Thread(
                target=run.producer.paced,
                args=(feed, RATE),
                kwargs={"started": started, "until": run._stop},
                daemon=True,
            )
            run._thread.start()
            started.wait(60)
            yield run
        finally:
            run._stop.set()
            stop_all(run.workers)


def longest_gap(times: list[float]) -> float:
    """The longest interval between consecutive instants (0 for fewer than two)."""
    ordered = sorted(times)
    return max((b - a for a, b in itertools.pairwise(ordered)), default=0.0)


def longest_commit_gap(lake: Lake) -> float:
    """Longest time between two of the table's commits that appended rows, in seconds."""
    stamps = [
        s.timestamp_ms / 1000
        for s in lake.table().snapshots()
        if s.summary is not None and s.summary.get("k2.offsets")
    ]
    return longest_gap(stamps)


def acked_between(producer: FeedProducer, start: float, end: float) -> int:
    """Acknowledgements that arrived in [start, end] (time.monotonic())."""
    return sum(1 for at, _ in producer.acks if start <= at <= end)


def timed(step: Callable[[], object]) -> float:
    """Seconds `step` took."""
    began = time.monotonic()
    step()
    return time.monotonic() - began
