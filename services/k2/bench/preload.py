"""Produce synthetic trades as fast as the producer goes, or at a fixed offered rate."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from k2.bench.encoding import frame, trade_bodies
from k2.contracts.catalogue import Dataset
from k2.contracts.schemas import latest_schema
from k2.delivery import send
from k2.errors import K2Error
from k2.replay.producer import ProducerTuning
from k2.serde.serializer import RegistryAvroSerializer, registry_client
from k2.settings import Endpoints

PACE_SLICE_S = 0.005


class ProduceError(K2Error):
    """Kafka did not acknowledge every benchmark record."""


@dataclass(frozen=True)
class Produced:
    """What a produce run sent."""

    records: int
    value_bytes: int
    seconds: float

    @property
    def records_per_s(self) -> float:
        """Achieved rate."""
        return self.records / self.seconds if self.seconds else 0.0


def trade_schema_id(endpoints: Endpoints, dataset: Dataset) -> int:
    """The registry id of the latest trade schema under the dataset's subject."""
    with registry_client(endpoints.schema_registry_url) as client:
        return RegistryAvroSerializer(client, dataset.subject, latest_schema("trade")).schema_id


class TradeProducer:
    """Idempotent producer of pre-encoded synthetic trades (same settings as replays)."""

    def __init__(self, endpoints: Endpoints, dataset: Dataset, linger_ms: int = 50) -> None:
        self._topic = dataset.topic.name
        self._schema_id = trade_schema_id(endpoints, dataset)
        self._producer = ProducerTuning(linger_ms=linger_ms).producer(
            endpoints.kafka_bootstrap_servers
        )
        self._failures = 0

    def _on_delivery(self, error: object, _message: object) -> None:
        if error is not None:
            self._failures += 1

    def encoded(self, count: int) -> list[tuple[bytes, bytes]]:
        """`count` framed (key, value) pairs, encoded up front (so pacing only produces)."""
        run = uuid.uuid4().hex[:8]
        return [(k, frame(self._schema_id, b)) for k, b in trade_bodies(run, count)]

    def _send(self, key: bytes, value: bytes) -> None:
        send(self._producer, self._topic, value, key=key, on_delivery=self._on_delivery)

    def flat_out(self, count: int, chunk: int = 100_000) -> Produced:
        """Produce `count` trades as fast as possible (encoding in chunks to bound memory)."""
        started = time.monotonic()
        sent = size = 0
        run = uuid.uuid4().hex[:8]
        for key, body in trade_bodies(run, count):
            value = frame(self._schema_id, body)
            self._send(key, value)
            sent += 1
            size += len(value)
            if sent % chunk == 0:
                self._producer.poll(0)
        self._finish()
        return Produced(sent, size, time.monotonic() - started)

    def paced(self, messages: list[tuple[bytes, bytes]], rate: float) -> Produced:
        """Offer `messages` at `rate` per second; Kafka stamps each at its `produce()` call."""
        started = time.monotonic()
        sent = size = 0
        total = len(messages)
        while sent < total:
            due = min(total, int((time.monotonic() - started) * rate) + 1)
            while sent < due:
                key, value = messages[sent]
                self._send(key, value)
                size += len(value)
                sent += 1
            self._producer.poll(0)
            time.sleep(PACE_SLICE_S)
        seconds = time.monotonic() - started
        self._finish()
        return Produced(sent, size, seconds)

    def _finish(self) -> None:
        remaining = self._producer.flush(120)
        if remaining or self._failures:
            raise ProduceError(f"{remaining} unacknowledged, {self._failures} refused records")
