"""Outages of each dependency while a worker runs, on a private stack: it waits, resumes, loses
and duplicates nothing, and its own /metrics show the outage.

These tests stop services, so they never touch the run's shared stack: the module starts its
own (`LocalStack` on ephemeral ports) and all of them run in one xdist group, one at a time.

Each case: v1 trades are produced and committed; the service goes down; v2 trades keep being
offered (the first v2 record needs a registry lookup, so a registry outage really blocks the
worker); after the outage the service comes back and the worker must finish on its own, as
the same process. The verdict is by identity and by the table's offsets and counts; the
metrics must show records that waited longer than the normal freshness (commit time minus
Kafka timestamp) because of the outage.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from k2.settings import Endpoints
from k2stack.local.stack import LocalStack
from k2stack.topology import ServiceName

from .faults_support import (
    FeedProducer,
    WorkerProcess,
    metric,
    offset_chain_problems,
    prefixed_lake,
    record_figures,
    stop_all,
    v1_feed,
    v2_feed,
    verdict,
    wait_until,
)

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.integration,
    # Outages of the local backend's own processes (a private local stack).
    pytest.mark.local_stack,
    pytest.mark.xdist_group("private-stack"),
]

# The 30 s outages, in CI too: five of them plus the restarts take about 8 minutes on
# a loaded 2-core machine, and they run in their own xdist group beside the rest of the suite.
# K2_RELIABILITY_OUTAGE_S overrides the length.
OUTAGE_S = float(os.environ.get("K2_RELIABILITY_OUTAGE_S", "30"))
RATE = 500  # records/s offered during and after the outage
LEAD_RECORDS = 2_000  # v1 records committed before the outage
TAIL_S = 8.0  # records offered after the service is back
WORKER = {"max_records": "5000", "max_age_s": "0.5", "max_backoff_s": "2"}
# A record that waited longer than this was held up by the outage (normal freshness is ~1 s).
FRESHNESS_BUCKET = "10.0" if OUTAGE_S >= 20 else "5.0"
RETRY_LOG = "dependency unavailable, retrying"


@pytest.fixture(scope="session")
def private_stack() -> Iterator[tuple[LocalStack, Endpoints]]:
    """A whole local stack of this module's own, on free ports; deleted afterwards."""
    # PostgreSQL runs as its own OS user: every directory above its data must be traversable.
    root = Path(tempfile.mkdtemp(prefix="k2-faults-stack-"))
    root.chmod(0o755)
    log_file = root / "stack.log"

    def log(line: str) -> None:
        with log_file.open("a") as handle:
            handle.write(line + "\n")

    stack = LocalStack(root / "stack", ephemeral_ports=True, log=log)
    try:
        env = stack.up()
        yield (
            stack,
            Endpoints.from_env(env),
        )
    finally:
        stack.down(purge=True)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Scraper:
    """Samples a worker's /metrics every second on a thread, keeping the last and peak values."""

    worker: WorkerProcess
    last: dict[str, float] = field(default_factory=dict)
    peak_lag: float = 0.0
    scrapes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self.sample()

    def sample(self) -> dict[str, float]:
        """Scrape now (keeps the last good sample when the endpoint does not answer)."""
        samples = self.worker.scrape()
        if samples is not None:
            self.last = samples
            self.scrapes += 1
            self.peak_lag = max(self.peak_lag, metric(samples, "k2_consumer_lag"))
        return self.last

    def close(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(10)


def _slow(samples: dict[str, float], name: str, bucket: str) -> float:
    """Observations of histogram `name` above `bucket` (count minus that bucket)."""
    return metric(samples, f"{name}_count") - metric(samples, f"{name}_bucket", le=bucket)


OUTAGES = [
    pytest.param(ServiceName.KAFKA, id="kafka-broker-restart"),
    pytest.param(ServiceName.ICEBERG_REST, id="iceberg-rest-catalog-down"),
    pytest.param(ServiceName.REGISTRY, id="registry-down"),
    pytest.param(ServiceName.SEAWEEDFS, id="seaweedfs-down"),
    pytest.param(ServiceName.POSTGRES, id="postgres-restart"),
]


@pytest.mark.parametrize("service", OUTAGES)
def test_worker_rides_out_an_outage(
    private_stack: tuple[LocalStack, Endpoints], service: ServiceName, tmp_path: Path
) -> None:
    began = time.monotonic()
    stack, endpoints = private_stack
    with prefixed_lake(endpoints, "out") as lake:
        run = uuid.uuid4().hex[:8]
        before = v1_feed(lake, run, LEAD_RECORDS)
        during = v2_feed(lake, run, int(RATE * (OUTAGE_S + TAIL_S)))
        expected = set(before.ids) | set(during.ids)
        worker = WorkerProcess(lake, tmp_path / "worker.log", WORKER)
        scraper = Scraper(worker)
        producer = FeedProducer(lake)
        stopped_at = restarted_at = None
        try:
            producer.all_at_once(before)
            wait_until(
                lambda: lake.consumed() >= LEAD_RECORDS or not worker.alive(),
                180,
                "v1 records committed",
            )
            assert worker.alive(), f"worker exited before the outage: see {worker.log_file}"
            wait_until(lambda: bool(scraper.sample()), 30, "worker metrics served")
            baseline = dict(scraper.sample())

            stopped_at = time.monotonic()
            assert stack.stop_service(service), f"{service} was not running"
            feeding = threading.Thread(target=producer.paced, args=(during, RATE), daemon=True)
            feeding.start()
            time.sleep(OUTAGE_S)
            assert worker.alive(), f"worker died during the {service} outage: {worker.log_file}"
            stack.start_service(service)
            restarted_at = time.monotonic()

            feeding.join(600)
            assert not producer.failed, producer.failed[:5]
            assert producer.acked == expected
            wait_until(
                lambda: lake.consumed() >= len(expected), 600, "every record committed after"
            )
            assert worker.alive(), f"worker exited after the outage: see {worker.log_file}"
            final = dict(scraper.sample())
            assert worker.stop() == 0, f"see {worker.log_file}"
        finally:
            scraper.close()
            stop_all([worker])
            if stopped_at is not None and restarted_at is None:
                stack.start_service(service)  # leave the private stack whole for the next case

        result = verdict(lake, expected)
        counts = lake.counts()
        chain = offset_chain_problems(lake)
    retries_logged = worker.log_text().count(RETRY_LOG)
    held_up = _slow(final, "k2_freshness_seconds", FRESHNESS_BUCKET) - _slow(
        baseline, "k2_freshness_seconds", FRESHNESS_BUCKET
    )
    slow_commits = _slow(final, "k2_commit_latency_seconds", FRESHNESS_BUCKET) - _slow(
        baseline, "k2_commit_latency_seconds", FRESHNESS_BUCKET
    )
    record_figures(
        f"outage_{service.value}",
        outage_s=round(restarted_at - stopped_at, 1),
        service_down_s=OUTAGE_S,
        worker_pid_unchanged=True,
        retries_logged=retries_logged,
        metrics_retries=metric(final, "k2_dependency_retries_total"),
        metrics_freshness_over_bucket=held_up,
        metrics_commits_slower_than_bucket=slow_commits,
        metrics_peak_lag=scraper.peak_lag,
        metrics_written=metric(final, "k2_records_written_total"),
        table_counts=counts,
        offset_chain_problems=len(chain),
        wall_s=round(time.monotonic() - began, 1),
        **result.figures(),
    )
    assert result.lost == 0, result.examples
    assert result.duplicated == 0, result.examples
    assert result.unexpected == 0, result.examples
    assert counts == {"consumed": len(expected), "written": len(expected), "dead_lettered": 0}
    assert not chain, chain[:5]
    assert metric(final, "k2_records_written_total") == len(expected)
    # The outage is visible in the worker's own metrics: records that waited out the outage.
    assert held_up > 0, f"no record waited over {FRESHNESS_BUCKET}s in the metrics: {final}"
    # Every backoff is counted in the worker's metrics too (by error class), not only logged.
    assert metric(final, "k2_dependency_retries_total") == retries_logged


BACKPRESSURE_LIMIT = 4 * 1024 * 1024  # max_buffered_bytes: a tenth of what the outage offers
BACKPRESSURE_RECORDS = 200_000  # ~40 MB of raw trades offered while the catalog is down


def _vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_a_stalled_catalog_pauses_the_worker_with_memory_bounded(
    private_stack: tuple[LocalStack, Endpoints], tmp_path: Path
) -> None:
    """Issue 13: backpressure exists. With the Iceberg REST catalog stopped, a full batch waits
    for the commit in flight, so the worker pauses its partitions: the records wait in Kafka
    (consumer lag), not in the worker (bytes waiting and RSS stay bounded); it resumes and
    finishes on its own when the catalog is back."""
    stack, endpoints = private_stack
    with prefixed_lake(endpoints, "bp") as lake:
        run = uuid.uuid4().hex[:8]
        lead = v2_feed(lake, run + "a", LEAD_RECORDS)
        flood = v2_feed(lake, run + "b", BACKPRESSURE_RECORDS)
        expected = set(lead.ids) | set(flood.ids)
        settings = {**WORKER, "max_buffered_bytes": str(BACKPRESSURE_LIMIT)}
        worker = WorkerProcess(lake, tmp_path / "worker.log", settings)
        scraper = Scraper(worker)
        producer = FeedProducer(lake)
        stopped = False
        try:
            producer.all_at_once(lead)
            wait_until(lambda: lake.consumed() >= LEAD_RECORDS, 180, "lead records committed")
            wait_until(lambda: bool(scraper.sample()), 30, "worker metrics served")
            rss_before = _vm_rss_mb(worker.pid)
            consumed_before = metric(scraper.sample(), "k2_records_consumed_total")
            assert stack.stop_service(ServiceName.ICEBERG_REST)
            stopped = True
            producer.all_at_once(flood)
            peak_waiting = peak_rss = 0.0
            paused_seen = False
            for _ in range(20):  # 20 s of outage with everything already produced
                time.sleep(1)
                samples = scraper.sample()
                paused_seen |= metric(samples, "k2_consumer_paused") == 1
                peak_waiting = max(peak_waiting, metric(samples, "k2_buffered_bytes"))
                peak_rss = max(peak_rss, _vm_rss_mb(worker.pid))
            # Records the worker took from Kafka during the outage (counted at poll time).
            taken = metric(samples, "k2_records_consumed_total") - consumed_before
            assert worker.alive(), f"worker died while the catalog was down: {worker.log_file}"
            stack.start_service(ServiceName.ICEBERG_REST)
            stopped = False
            wait_until(lambda: lake.consumed() >= len(expected), 600, "every record committed")
            final = scraper.sample()
            assert worker.stop() == 0, f"see {worker.log_file}"
        finally:
            scraper.close()
            stop_all([worker])
            if stopped:
                stack.start_service(ServiceName.ICEBERG_REST)
        result = verdict(lake, expected)
    record_figures(
        "backpressure_stalled_catalog",
        limit_bytes=BACKPRESSURE_LIMIT,
        offered_records=BACKPRESSURE_RECORDS,
        peak_bytes_waiting=peak_waiting,
        paused_seen=paused_seen,
        peak_lag=scraper.peak_lag,
        taken_during_outage=taken,
        rss_before_mb=round(rss_before, 1),
        peak_rss_during_outage_mb=round(peak_rss, 1),
        **result.figures(),
    )
    assert paused_seen, "the worker never paused its partitions"
    # Bounded: the limit plus the poll chunk that crossed it (10k trades, ~2 MB).
    assert peak_waiting <= BACKPRESSURE_LIMIT + 4 * 1024 * 1024, peak_waiting
    # The flood waited in Kafka, not in the worker. Counted as records polled: the lag gauge
    # (librdkafka's view) stops moving once partitions are paused, so its peak depends on
    # when the pause came (88,511 of 200,000 in one CI run), not on what the worker held.
    assert taken <= BACKPRESSURE_RECORDS / 2, taken
    assert peak_rss - rss_before < 150, (rss_before, peak_rss)
    assert metric(final, "k2_consumer_paused") == 0
    assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 0), result.examples
