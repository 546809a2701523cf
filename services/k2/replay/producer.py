"""Idempotent, registry-serialising Kafka producer for K2's datasets.

`acks=all` + `enable.idempotence=true`: a retried send is never written twice and a send is
acknowledged only when every in-sync replica has it. Linger and batch size are raised so that
a replay ships large compressed batches instead of one request per record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.serialization import MessageField, SerializationContext

from k2 import kafka
from k2.contracts.catalogue import Catalogue, Dataset
from k2.contracts.schemas import latest_schema
from k2.errors import K2Error
from k2.serde.serializer import RegistryAvroSerializer, registry_client


class PublishError(K2Error):
    """Kafka refused or could not confirm some records."""


@dataclass(frozen=True)
class ProducerTuning:
    """librdkafka settings a replay or load generator may tune (defaults favour throughput)."""

    linger_ms: int = 50
    batch_size: int = 1_048_576
    compression: str = "lz4"
    queue_max_messages: int = 500_000

    def settings(self) -> dict[str, str | int | bool]:
        """librdkafka producer settings; idempotence and acks are not tunable on purpose."""
        return {
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": self.linger_ms,
            "batch.size": self.batch_size,
            "compression.type": self.compression,
            "queue.buffering.max.messages": self.queue_max_messages,
        }

    def producer(self, bootstrap_servers: str) -> Producer:
        """A producer with these settings and the stack's authentication (`k2.kafka`)."""
        return kafka.producer(bootstrap_servers, **self.settings())


class RecordPublisher:
    """Publishes records of catalogue datasets, keyed per the catalogue, to their topics."""

    def __init__(
        self,
        bootstrap_servers: str,
        registry_url: str,
        catalogue: Catalogue,
        *,
        tuning: ProducerTuning | None = None,
        auto_register: bool = False,
    ) -> None:
        self._catalogue = catalogue
        self._producer = (tuning or ProducerTuning()).producer(bootstrap_servers)
        self._registry = registry_client(registry_url)
        self._auto_register = auto_register
        self._serializers: dict[str, RegistryAvroSerializer] = {}
        self.sent = 0
        self.delivered = 0
        self.failures: list[str] = []

    def _serializer(self, dataset: Dataset) -> RegistryAvroSerializer:
        serializer = self._serializers.get(dataset.name)
        if serializer is None:
            serializer = RegistryAvroSerializer(
                self._registry,
                dataset.subject,
                latest_schema(dataset.schema_name),
                auto_register=self._auto_register,
            )
            self._serializers[dataset.name] = serializer
        return serializer

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.delivered += 1
        else:
            self.failures.append(f"{message.topic()}: {error}")

    def publish(self, dataset_name: str, record: Mapping[str, Any]) -> None:
        """Serialise `record` and hand it to librdkafka (waits only when its queue is full)."""
        dataset = self._catalogue.dataset(dataset_name)
        topic = dataset.topic.name
        value = self._serializer(dataset)(record, SerializationContext(topic, MessageField.VALUE))
        key = dataset.record_key(dict(record)).encode()
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=self._on_delivery)
                break
            except BufferError:
                # Local queue full: serve delivery reports until there is room (backpressure).
                self._producer.poll(0.1)
        self.sent += 1
        self._producer.poll(0)

    def close(self) -> None:
        """Release the registry client's connections (the producer itself needs no close)."""
        self._registry.close()

    def __enter__(self) -> RecordPublisher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def flush(self, timeout: float = 60.0) -> None:
        """Wait for every record to be acknowledged; raise if any was refused or is missing."""
        remaining = self._producer.flush(timeout)
        if self.failures:
            sample = "; ".join(self.failures[:5])
            raise PublishError(f"{len(self.failures)} record(s) not delivered: {sample}")
        if remaining:
            raise PublishError(f"{remaining} record(s) not acknowledged within {timeout}s")
