"""Helpers of the fault-injection tests: a prefixed lake, worker processes, a feed, the verdict.

Every check here is by identity (trade_id) and by the offsets the table itself records: the
final table must hold each produced trade exactly once, the per-partition offset ranges of its
snapshots must chain without gap or overlap (a stale or zombie commit would overlap), and the
`k2.count.*` properties must reconcile with what was produced.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import ServerError, ServiceUnavailableError
from pyiceberg.table import Table

from k2 import children, kafka
from k2.bench.encoding import frame, trade_bodies
from k2.bench.environment import bootstrapped
from k2.catalog import load_catalog
from k2.contracts.catalogue import Dataset
from k2.contracts.schemas import load_schema
from k2.net import free_port
from k2.replay.producer import ProducerTuning
from k2.serde.serializer import RegistryAvroSerializer, registry_client
from k2.settings import Endpoints

# Longer variants (more records, more cycles, full-length outages) run with K2_RELIABILITY_LONG=1.
LONG = os.environ.get("K2_RELIABILITY_LONG") == "1"
FIGURES_ENV = "K2_RELIABILITY_FIGURES"
COUNT_PREFIX = "k2.count."
SUMMARY_OFFSETS = "k2.offsets"
BASE_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def figures_path() -> Path:
    """Where each test appends its measured figures (one JSON object per line)."""
    default = Path(tempfile.gettempdir()) / "k2-reliability-figures.jsonl"
    return Path(os.environ.get(FIGURES_ENV, default))


def record_figures(test: str, **figures: Any) -> None:
    """Append `figures` of `test` to the figures file and print them (visible with -s / -rA)."""
    line = json.dumps({"test": test, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ"), **figures})
    with figures_path().open("a") as handle:
        handle.write(line + "\n")
    print(f"[k2 reliability] {line}", flush=True)


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `predicate` every 0.5 s; fail naming `what` after `timeout_s` (a liveness bound)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"not reached within {timeout_s:.0f}s: {what}")


# --- the lake -------------------------------------------------------------------------------
@dataclass
class Lake:
    """The trades dataset of a bootstrapped, prefixed catalogue."""

    endpoints: Endpoints
    prefix: str
    dataset: Dataset
    catalog: Catalog

    def table(self) -> Table:
        """The trades table, freshly loaded."""
        return self.catalog.load_table(self.dataset.table_identifier)

    def counts(self) -> dict[str, int]:
        """consumed / written / dead_lettered summed over partitions (table properties)."""
        props = self.table().properties
        return {
            kind: sum(
                int(v)
                for key, v in props.items()
                if key.startswith(COUNT_PREFIX) and key.endswith("." + kind)
            )
            for kind in ("consumed", "written", "dead_lettered")
        }

    def consumed(self) -> int:
        """Records the table accounts for; 0 while the catalog cannot answer."""
        try:
            return self.counts()["consumed"]
        except (OSError, ServerError, ServiceUnavailableError):
            return 0  # the catalog (or its database) is down or recovering: ask again later

    def trade_ids(self) -> list[str]:
        """Every trade_id in the table (one per row, duplicates included)."""
        scan = self.table().scan(selected_fields=("trade_id",))
        return [str(v) for v in scan.to_arrow().column("trade_id").to_pylist()]


@contextmanager
def prefixed_lake(endpoints: Endpoints, kind: str = "flt") -> Iterator[Lake]:
    """Bootstrap the catalogue under a fresh prefix; yield its trades dataset."""
    prefix = f"{kind}{uuid.uuid4().hex[:8]}_"
    catalogue = bootstrapped(endpoints, prefix)
    catalog = load_catalog(endpoints)
    try:
        yield Lake(endpoints, prefix, catalogue.dataset("trades"), catalog)
    finally:
        catalog.close()  # pyiceberg's public lifecycle: closes the REST session


# --- the verdict ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """The final table against the produced set, by identity."""

    produced: int
    rows: int
    lost: int
    duplicated: int
    unexpected: int
    examples: dict[str, list[str]]

    def figures(self) -> dict[str, int]:
        """What the report needs."""
        return {
            "produced": self.produced,
            "rows": self.rows,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "unexpected": self.unexpected,
        }


def verdict(lake: Lake, expected: set[str]) -> Verdict:
    """Compare the table's trade_ids with `expected`: lost, duplicated, unexpected."""
    ids = lake.trade_ids()
    counts = Counter(ids)
    duplicated = [i for i, n in counts.items() if n > 1]
    lost = expected - counts.keys()
    unexpected = counts.keys() - expected
    return Verdict(
        produced=len(expected),
        rows=len(ids),
        lost=len(lost),
        duplicated=sum(counts[i] - 1 for i in duplicated),
        unexpected=len(unexpected),
        examples={
            "lost": sorted(lost)[:5],
            "duplicated": sorted(duplicated)[:5],
            "unexpected": sorted(unexpected)[:5],
        },
    )


def offset_chain_problems(lake: Lake) -> list[str]:
    """Per partition, the snapshots' offset ranges must chain exactly: [a,b) then [b,c) ...

    A stale (zombie) or duplicated commit shows up as an overlap, a lost batch as a gap.
    Only snapshots that append rows carry ranges, so this holds for runs without dead letters.
    """
    table = lake.table()
    snapshots = sorted(table.snapshots(), key=lambda s: s.sequence_number or 0)
    ends: dict[str, int] = {}
    problems: list[str] = []
    for snapshot in snapshots:
        raw = snapshot.summary.get(SUMMARY_OFFSETS) if snapshot.summary else None
        if raw is None:
            continue
        for tp, (start, end) in json.loads(raw).items():
            previous = ends.get(tp)
            # None: the table had no offset yet, the batch was read from the beginning (0).
            if (0 if start is None else start) != (previous or 0) or (
                start is None and previous is not None
            ):
                problems.append(
                    f"{tp}: snapshot {snapshot.snapshot_id} starts {start}, previous ended {previous}"
                )
            ends[tp] = end
    for tp, end in ends.items():
        topic, partition = tp.rsplit(":", 1)
        value = table.properties.get(f"k2.offset.{topic}.{partition}")
        if value is None or int(value) != end:
            problems.append(f"{tp}: table records {value}, snapshots end at {end}")
    return problems


# --- the feed -------------------------------------------------------------------------------
@dataclass
class Feed:
    """Pre-encoded, Confluent-framed trades (key, value) with their trade_ids."""

    ids: list[str] = field(default_factory=list)
    messages: list[tuple[bytes, bytes]] = field(default_factory=list)

    def extend(self, other: Feed) -> None:
        """Append another feed's messages."""
        self.ids.extend(other.ids)
        self.messages.extend(other.messages)


def schema_id(lake: Lake, version: int) -> int:
    """The registry id of trade schema `version` under the dataset's subject."""
    with registry_client(lake.endpoints.schema_registry_url) as client:
        return RegistryAvroSerializer(
            client, lake.dataset.subject, load_schema("trade", version)
        ).schema_id


def v2_feed(lake: Lake, run: str, count: int, base_us: int | None = None) -> Feed:
    """`count` unique v2 trades, encoded directly (fast: about 100k/s); the n-th at event time
    `base_us` (default now) + n µs: the same run and count give the same trade_ids."""
    sid = schema_id(lake, 2)
    feed = Feed()
    for n, (key, body) in enumerate(trade_bodies(run, count, base_us=base_us), start=1):
        feed.ids.append(f"{run}-T{n}")
        feed.messages.append((key, frame(sid, body)))
    return feed


def v1_feed(lake: Lake, run: str, count: int) -> Feed:
    """`count` unique v1 trades, serialized through the registry (slow: only a few thousand)."""
    feed = Feed()
    with registry_client(lake.endpoints.schema_registry_url) as client:
        serializer = RegistryAvroSerializer(client, lake.dataset.subject, load_schema("trade", 1))
        for n in range(count):
            trade_id = f"{run}-V{n}"
            symbol = ["BHP", "CBA", "RIO", "CSL", "NAB", "WBC"][n % 6]
            record: dict[str, Any] = {
                "trade_id": trade_id,
                "exchange": "XASX",
                "symbol": symbol,
                "instrument_id": None,
                "venue_sequence": n,
                "event_time": BASE_US + n,
                "event_time_nanos": None,
                "receive_time": BASE_US + n + 5,
                "price": Decimal("45.12345678") + Decimal(n % 1000) / Decimal(100),
                "size": Decimal(100 + n % 50),
                "currency": "AUD",
                "side": "BUY",
                "conditions": ["XT"],
            }
            feed.ids.append(trade_id)
            feed.messages.append((symbol.encode(), serializer(record)))
    return feed


class FeedProducer:
    """An idempotent producer that tracks which trades Kafka acknowledged, and when.

    `failed` holds delivery failures (a record librdkafka gave up on); `client_errors` counts
    the errors librdkafka reports while it retries by itself (a broker refusing connections,
    all brokers down): the producer-side view of an outage.
    """

    def __init__(self, lake: Lake) -> None:
        self._topic = lake.dataset.topic.name
        self._producer = kafka.producer(
            lake.endpoints.kafka_bootstrap_servers,
            **ProducerTuning(linger_ms=20).settings(),
            error_cb=self._on_error,
        )
        self.acked: set[str] = set()
        # (time.monotonic() of the acknowledgement, trade_id), in the order they came.
        self.acks: list[tuple[float, str]] = []
        self.offered: list[str] = []
        self.failed: list[str] = []
        self.client_errors = 0
        self._lock = threading.Lock()

    def _on_error(self, _error: KafkaError) -> None:
        self.client_errors += 1

    def _callback(self, trade_id: str) -> Callable[[KafkaError | None, Message], None]:
        def done(error: KafkaError | None, _message: Message) -> None:
            with self._lock:
                if error is None:
                    self.acked.add(trade_id)
                    self.acks.append((time.monotonic(), trade_id))
                else:
                    self.failed.append(f"{trade_id}: {error}")

        return done

    def _send(self, trade_id: str, key: bytes, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(
                    self._topic, key=key, value=value, on_delivery=self._callback(trade_id)
                )
            except BufferError:
                self._producer.poll(0.05)  # local queue full: wait for acknowledgements
            else:
                return

    def all_at_once(self, feed: Feed) -> None:
        """Produce the whole feed as fast as the producer goes, then flush."""
        for trade_id, (key, value) in zip(feed.ids, feed.messages, strict=True):
            self._send(trade_id, key, value)
        self.flush()

    def paced(
        self,
        feed: Feed,
        rate: float,
        started: threading.Event | None = None,
        until: threading.Event | None = None,
    ) -> None:
        """Offer the feed at `rate` per second (the caller's thread), then flush; with `until`,
        stop offering once it is set (`offered` lists what was)."""
        begin = time.monotonic()
        for sent, (trade_id, (key, value)) in enumerate(zip(feed.ids, feed.messages, strict=True)):
            if until is not None and until.is_set():
                break
            pause = begin + sent / rate - time.monotonic()
            if pause > 0.01:  # sleep in slices: a sleep per record would burn a core
                time.sleep(pause)
            self._send(trade_id, key, value)
            self.offered.append(trade_id)
            self._producer.poll(0)
            if started is not None:
                started.set()
        self.flush()

    def flush(self, timeout_s: float = 300.0) -> None:
        """Wait for every acknowledgement (librdkafka retries through a broker restart)."""
        remaining = self._producer.flush(timeout_s)
        if remaining:
            self.failed.append(f"{remaining} messages never acknowledged")


# --- worker processes -----------------------------------------------------------------------
class WorkerProcess(children.WorkerProcess):
    """`k2 ingest run --table trades` of a lake, with its `K2_INGEST_*` settings (and a fault)."""

    def __init__(
        self,
        lake: Lake,
        log_file: Path,
        settings: Mapping[str, str],
        *,
        metrics: bool = True,
        fault: str | None = None,
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("K2_INGEST_")}
        env.update(lake.endpoints.as_env())
        env.update({f"K2_INGEST_{k.upper()}": v for k, v in settings.items()})
        if fault is not None:
            env["K2_INGEST_FAULT"] = fault
        port = free_port() if metrics else None
        super().__init__("trades", log_file, env, prefix=lake.prefix, metrics_port=port)

    def stop(self, timeout_s: float = 90.0) -> int:
        """SIGTERM, then reap; a worker draining a fault's backlog may take longer to leave."""
        return super().stop(timeout_s)


def metric(samples: dict[str, float] | None, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for key, value in (samples or {}).items():
        sample_name, _, rest = key.partition("{")
        if sample_name != name:
            continue
        have = dict(p.split("=", 1) for p in rest.rstrip("}").split(",") if p)
        if all(have.get(k) == v for k, v in labels.items()):
            total += value
    return total


def stop_all(workers: Sequence[WorkerProcess]) -> None:
    """Reap every worker still running (SIGKILL: the test's verdict is already taken)."""
    for worker in workers:
        if worker.alive():
            worker.thaw()
            worker.kill9()
