"""Failover on the cluster profile: brokers, the controller and a registry die under load, and
nothing is lost or duplicated.

One cluster-profile local stack (three combined KRaft nodes, RF 3, min ISR 2, two Apicurio
instances on one PostgreSQL) serves the whole module: every test here runs in one xdist group,
one at a time, and starts from a whole cluster. Each writes trades at RATE/s through an
idempotent acks=all producer into RF-3 topics while ingest workers commit them to Iceberg, and
ends with a count by identity (0 lost, 0 duplicated, nothing unexpected, offsets chained) and
its measured unavailability (`record_figures`: longest gap between commits and between
acknowledgements, delivery failures, librdkafka's retried errors, plus what the fault itself
took: leader movement, election, restarts).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from k2.contracts.schemas import load_schema
from k2.ingest.schemas import RegistrySchemaSource
from k2.serde.serializer import avro_schema, registry_client
from k2stack.topology import ServiceName

from .cluster_support import (
    BROKERS,
    LAYOUT,
    RATE,
    RECOVERY_S,
    REGISTRIES,
    Cluster,
    acked_between,
    load_run,
    timed,
)
from .faults_support import metric, record_figures, schema_id, wait_until

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.integration,
    # The tests kill and restart the local backend's own processes.
    pytest.mark.local_stack,
    pytest.mark.xdist_group("cluster-stack"),
]


@pytest.fixture(autouse=True)
def _as_admin(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' producers, admin calls and workers authenticate as the admin principal (the
    profile runs SASL/SCRAM; the principals' own limits are tested in test_cluster_principals)."""
    for name, value in cluster.kafka_env().items():
        monkeypatch.setenv(name, value)


def test_profile_shape_env_and_memory(cluster: Cluster) -> None:
    """What `stack:env` promises (three brokers, both registries, each answering), the
    replication settings and explicit heaps of every JVM, and the profile's RSS just after
    start (first in the module: before any load has grown the heaps)."""
    endpoints = cluster.endpoints
    assert len(endpoints.kafka_bootstrap_servers.split(",")) == LAYOUT.kafka_brokers
    assert cluster.registered_brokers() == set(range(LAYOUT.kafka_brokers))
    for one in endpoints.schema_registry_urls:
        with registry_client(one) as client:
            client.get_subjects()  # each instance answers on its own
    configs = _broker_configs(cluster)
    assert configs["default.replication.factor"] == str(LAYOUT.replication_factor)
    assert configs["min.insync.replicas"] == str(LAYOUT.min_insync_replicas)
    rss: dict[str, int] = {}
    for name in cluster.stack.process_names():
        pid = cluster.stack.pid(name)
        assert pid is not None, f"{name} is not running"
        rss[name] = _rss_mib(pid)
        service = name.rsplit("-", 1)[0] if name[-1].isdigit() else name
        if service in (ServiceName.KAFKA.value, ServiceName.REGISTRY.value):
            heap = LAYOUT.heap_mb(ServiceName(service))
            assert f"-Xmx{heap}m" in _cmdline(pid), f"{name} runs without its -Xmx{heap}m"
    record_figures("cluster_profile_rss", rss_mib=rss, total_mib=sum(rss.values()))


def _assert_nothing_lost(figures: dict[str, Any]) -> None:
    assert figures["lost"] == 0, figures["examples"]
    assert figures["duplicated"] == 0, figures["examples"]
    assert figures["unexpected"] == 0, figures["examples"]
    assert figures["rows"] == figures["offered"] > 0
    assert figures["delivery_failures"] == 0, figures["delivery_failure_examples"]
    assert figures["acked_all_offered"]
    assert not figures["offset_chain_problems"], figures["offset_chain_problems"]
    assert figures["table_counts"]["consumed"] == figures["offered"]
    assert figures["table_counts"]["dead_lettered"] == 0
    assert figures["worker_exits"] and set(figures["worker_exits"]) == {0}


def _busiest_leader(cluster: Cluster, topic: str) -> int:
    """The broker leading the most partitions of `topic`."""
    leaders = Counter(cluster.leaders(topic).values())
    return leaders.most_common(1)[0][0]


def test_kill9_partition_leader_mid_ingest_then_restart(cluster: Cluster, tmp_path: Path) -> None:
    with load_run(cluster, tmp_path, seconds=120) as run:
        run.wait_committed(3 * RATE, "ingest under way before the kill")
        topic = run.lake.dataset.topic.name
        victim = _busiest_leader(cluster, topic)
        led = sum(1 for leader in cluster.leaders(topic).values() if leader == victim)
        killed_at = time.monotonic()
        assert cluster.stack.kill(BROKERS[victim])

        def moved() -> bool:
            return victim not in cluster.leaders(topic).values()

        wait_until(moved, RECOVERY_S, f"leadership moved off broker {victim}")
        leaders_moved_s = time.monotonic() - killed_at
        time.sleep(max(0.0, 10 - leaders_moved_s))  # down a while: the others carry the load
        restart_s = timed(lambda: cluster.stack.start(BROKERS[victim]))
        rejoined_s = timed(
            lambda: wait_until(lambda: cluster.isr_complete(*run.topics), RECOVERY_S, "ISR 3")
        )
        time.sleep(5)  # load after the restart, through the rejoined broker
        figures = run.finish()
    record_figures(
        "cluster_kill9_partition_leader",
        victim=BROKERS[victim],
        partitions_it_led=led,
        leaders_moved_s=round(leaders_moved_s, 1),
        restart_s=round(restart_s, 1),
        back_in_sync_s=round(rejoined_s, 1),
        **figures,
    )
    _assert_nothing_lost(figures)
    assert led > 0


def test_kill9_active_controller(cluster: Cluster, tmp_path: Path) -> None:
    with load_run(cluster, tmp_path, seconds=120) as run:
        run.wait_committed(3 * RATE, "ingest under way before the kill")
        controller, epoch = cluster.active_controller()
        killed_at = time.monotonic()
        assert cluster.stack.kill(BROKERS[controller])

        def elected() -> bool:
            views = [view for node, view in cluster.quorum_views().items() if node != controller]
            return any(leader != controller and new > epoch for leader, new in views)

        wait_until(elected, RECOVERY_S, "a new active controller elected")
        election_s = time.monotonic() - killed_at
        new_controller, new_epoch = cluster.active_controller()
        # The quorum keeps serving metadata with two of three voters: a topic can be created.
        probe_topic = f"{run.lake.prefix}controller-probe"
        wait_until(lambda: _create_topic(cluster, probe_topic), RECOVERY_S, "a topic created")
        time.sleep(5)
        restart_s = timed(lambda: cluster.stack.start(BROKERS[controller]))
        wait_until(lambda: cluster.isr_complete(*run.topics), RECOVERY_S, "ISR 3 after restart")
        time.sleep(3)
        figures = run.finish()
    record_figures(
        "cluster_kill9_active_controller",
        killed_controller=BROKERS[controller],
        new_controller=BROKERS[new_controller],
        epochs=[epoch, new_epoch],
        election_s=round(election_s, 1),
        restart_s=round(restart_s, 1),
        **figures,
    )
    _assert_nothing_lost(figures)
    assert new_controller != controller and new_epoch > epoch


def _create_topic(cluster: Cluster, name: str) -> bool:
    """One attempt to create `name`; True once it exists.

    KRaft names a random live broker "the controller" to clients, and the client may still
    hold the dead node's name for a metadata refresh or two (a CI run under load timed out
    "waiting for controller" within one 30 s request): only a timeout is asked again. A
    timed-out request may still have succeeded, so "already exists" counts as created.
    """
    from confluent_kafka.admin import NewTopic

    topic = NewTopic(name, 1, LAYOUT.replication_factor)
    try:
        cluster.admin().create_topics([topic], request_timeout=30)[name].result(60)
    except KafkaException as e:
        error = e.args[0]
        if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return True
        if error.code() == KafkaError._TIMED_OUT:
            return False
        raise
    return True


def test_kill9_registry_instance_while_workers_start_and_lookups_run(
    cluster: Cluster, tmp_path: Path
) -> None:
    url = cluster.endpoints.schema_registry_url
    assert len(cluster.endpoints.schema_registry_urls) == len(REGISTRIES) == 2
    with load_run(cluster, tmp_path, seconds=150) as run:
        subject = run.lake.dataset.subject
        v2 = avro_schema(load_schema("trade", 2))
        v2_id = schema_id(run.lake, 2)
        lookups = _Lookups(url, subject, v2, v2_id)
        run.wait_committed(2 * RATE, "the first worker committing before the kill")
        # Two more workers start (no schema cached yet), and registry-0, first in every
        # client's list, dies while they import, join the group and look their schemas up.
        starting = [run.start_worker(), run.start_worker()]
        time.sleep(1.0)
        killed_at = time.monotonic()
        assert cluster.stack.kill(REGISTRIES[0])
        lookups.outage.set()

        def started_writing() -> bool:
            return all(
                metric(w.scrape(), "k2_records_written_total") > 0 for w in starting if w.alive()
            )

        wait_until(started_writing, RECOVERY_S, "the new workers writing, registry-0 dead")
        new_workers_writing_s = time.monotonic() - killed_at
        time.sleep(3)
        lookups.outage.clear()
        lookups.close()
        # Apicurio takes a while to start: the load drains meanwhile, through registry-1.
        restart = _Background(lambda: cluster.stack.start(REGISTRIES[0]))
        retries = sum(
            metric(w.scrape(), "k2_dependency_retries_total", error="RegistryUnavailableError")
            for w in run.workers
        )
        figures = run.finish()
        restart_s = restart.join()
    record_figures(
        "cluster_kill9_registry_instance",
        killed=REGISTRIES[0],
        new_workers_writing_s=round(new_workers_writing_s, 1),
        registry_restart_s=round(restart_s, 1),
        worker_dependency_retries=retries,
        **lookups.figures(),
        **figures,
    )
    _assert_nothing_lost(figures)
    assert lookups.errors == [], lookups.errors[:3]
    assert lookups.during_outage > 0, "no lookup ran while registry-0 was dead"
    assert retries == 0, "a worker saw the registry unavailable: the failover did not hide it"


class _Background:
    """A step on a thread of its own; `join` returns the seconds it took (or raises its error)."""

    def __init__(self, step: Callable[[], object]) -> None:
        self._error: BaseException | None = None
        self._took = 0.0
        self._thread = threading.Thread(target=self._run, args=(step,), daemon=True)
        self._thread.start()

    def _run(self, step: Callable[[], object]) -> None:
        try:
            self._took = timed(step)
        except BaseException as e:  # handed to the test thread by join()
            self._error = e

    def join(self) -> float:
        self._thread.join(RECOVERY_S)
        if self._thread.is_alive():
            raise AssertionError(f"a background step outlived {RECOVERY_S:.0f}s")
        if self._error is not None:
            raise self._error
        return self._took


class _Lookups:
    """Schema lookups on a thread, each through fresh clients (no cache), until closed:
    confluent-kafka's (the producers' serializer, bootstrap) and the worker's own by id."""

    def __init__(self, url: str, subject: str, schema: Any, schema_id: int) -> None:
        self._url, self._subject, self._schema, self._id = url, subject, schema, schema_id
        self.done = 0
        self.during_outage = 0
        self.errors: list[str] = []
        self.slowest_s = 0.0
        self.outage = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                with registry_client(self._url) as client:
                    found = client.lookup_schema(self._subject, self._schema).schema_id
                source = RegistrySchemaSource(self._url)
                try:
                    text = source.schema_text(self._id)
                finally:
                    source.close()
                if found != self._id or text is None:
                    self.errors.append(f"lookup answered id {found}, text {text is not None}")
            except Exception as e:  # every failure is a finding of the test
                self.errors.append(f"{type(e).__name__}: {e}")
            self.slowest_s = max(self.slowest_s, time.monotonic() - began)
            self.done += 1
            self.during_outage += self.outage.is_set()
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def figures(self) -> dict[str, Any]:
        return {
            "lookups": self.done,
            "lookup_errors": len(self.errors),
            "slowest_lookup_s": round(self.slowest_s, 2),
        }


def test_rolling_restart_of_all_brokers_under_load(cluster: Cluster, tmp_path: Path) -> None:
    restarts: dict[str, dict[str, float]] = {}
    with load_run(cluster, tmp_path, seconds=240, workers=2) as run:
        run.wait_committed(3 * RATE, "ingest under way before the first restart")
        for name in BROKERS:
            stop_s = timed(lambda name=name: cluster.stack.stop(name))
            start_s = timed(lambda name=name: cluster.stack.start(name))
            in_sync_s = timed(
                lambda name=name: wait_until(
                    lambda: cluster.isr_complete(*run.topics), RECOVERY_S, f"ISR 3 after {name}"
                )
            )
            restarts[name] = {
                "stop_s": round(stop_s, 1),
                "start_s": round(start_s, 1),
                "back_in_sync_s": round(in_sync_s, 1),
            }
        time.sleep(3)
        figures = run.finish()
    record_figures("cluster_rolling_restart", restarts=restarts, **figures)
    _assert_nothing_lost(figures)


DOWN_S = 60.0
# Records offered while the broker is down must be acknowledged while it is still down; this
# long before it comes back (leadership moves after the dead broker's session expires, ~9 s
# by Kafka's default), a liveness bound, not a speed target.
ACK_BOUND_S = 20.0


def test_broker_down_60s_min_isr_met_producers_keep_acknowledging(
    cluster: Cluster, tmp_path: Path
) -> None:
    with load_run(cluster, tmp_path, seconds=DOWN_S + 60) as run:
        run.wait_committed(2 * RATE, "ingest under way before the broker goes down")
        controller, _ = cluster.active_controller()
        victim = next(i for i in range(len(BROKERS)) if i != controller)
        down_at = time.monotonic()
        assert cluster.stack.kill(BROKERS[victim])
        offered_at_down = len(run.producer.offered)
        time.sleep(DOWN_S)
        up_at = time.monotonic()
        offered_while_down = run.producer.offered[offered_at_down:]
        acked_while_down = acked_between(run.producer, down_at, up_at)
        must_be_acked = run.producer.offered[
            offered_at_down : offered_at_down + int(RATE * (DOWN_S - ACK_BOUND_S))
        ]
        late = [i for i in must_be_acked if i not in run.producer.acked]
        rejoined_s = timed(lambda: cluster.stack.start(BROKERS[victim]))
        wait_until(lambda: cluster.isr_complete(*run.topics), RECOVERY_S, "ISR 3 after 60 s down")
        time.sleep(3)
        figures = run.finish()
    record_figures(
        "cluster_broker_down_60s",
        victim=BROKERS[victim],
        down_s=DOWN_S,
        offered_while_down=len(offered_while_down),
        acked_while_down=acked_while_down,
        not_acked_within_bound=len(late),
        restart_s=round(rejoined_s, 1),
        **figures,
    )
    _assert_nothing_lost(figures)
    assert len(must_be_acked) > 0
    assert late == [], f"{len(late)} records offered while the broker was down went unacked"


def _broker_configs(cluster: Cluster) -> dict[str, str]:
    from confluent_kafka.admin import ConfigResource

    resource = ConfigResource(ConfigResource.Type.BROKER, "0")
    found = cluster.admin().describe_configs([resource])[resource].result(30)
    return {name: entry.value for name, entry in found.items()}


def _rss_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
