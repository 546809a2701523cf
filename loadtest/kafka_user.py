"""A reusable Locust user that produces K2 market data to Kafka through the registry serializer.

Each user owns one idempotent confluent-kafka producer. A request event is fired from the
delivery callback, with the latency librdkafka measured from `produce()` to the broker's
acknowledgement (`Message.latency()`, which librdkafka takes when the report is served, so a
small greenlet serves reports every few milliseconds: the figure is the ack, not our polling
cadence). librdkafka is C code that gevent cannot preempt, so nothing blocks: tasks produce
and `poll(0)`; a full local queue is reported as a failure, not waited out.
`on_stop` flushes, so every produced record ends as exactly one success or one failure.
More load than one core gives: more Locust processes (`--processes`).

Options (command line or locust.conf): `--k2-prefix` (catalogue prefix of the topics),
`--k2-batch` (records per task), and the thresholds `loadtest.run` enforces.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import gevent  # type: ignore[import-untyped]  # no stubs in the lock
from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka.serialization import MessageField, SerializationContext
from locust import User, events
from locust.env import Environment

from k2.bench.synthetic import MarketGenerator
from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.contracts.schemas import latest_schema
from k2.replay.producer import ProducerTuning
from k2.serde.serializer import RegistryAvroSerializer, registry_client
from k2.settings import Endpoints

REQUEST_TYPE = "kafka"
SERVE_INTERVAL_S = 0.002
FLUSH_TIMEOUT_S = 30.0


def add_arguments(parser: Any) -> None:
    """K2's options; thresholds live here too so that locust.conf may hold them."""
    group = parser.add_argument_group("K2")
    group.add_argument("--k2-prefix", default="", help="Catalogue prefix of the topics")
    group.add_argument("--k2-batch", type=int, default=25, help="Records per task call")
    group.add_argument("--k2-linger-ms", type=int, default=5, help="Producer linger.ms")
    group.add_argument("--k2-max-p95-ms", type=float, default=250.0, help="Produce p95 limit")
    group.add_argument("--k2-max-error-ratio", type=float, default=0.001, help="Failure ratio")
    group.add_argument(
        "--k2-max-freshness-p99-s", type=float, default=5.0, help="Ingest freshness p99 limit"
    )


events.init_command_line_parser.add_listener(add_arguments)  # type: ignore[no-untyped-call]


def _option(environment: Environment, name: str, default: Any) -> Any:
    options = environment.parsed_options
    return default if options is None else getattr(options, name, default)


class KafkaClient:
    """A producer plus one serializer per dataset; reports every delivery to Locust."""

    def __init__(self, environment: Environment, catalogue: Catalogue, endpoints: Endpoints):
        self._fire: Callable[..., None] = environment.events.request.fire
        self._catalogue = catalogue
        tuning = ProducerTuning(linger_ms=int(_option(environment, "k2_linger_ms", 5)))
        self._producer = tuning.producer(endpoints.kafka_bootstrap_servers)
        self._registry = registry_client(endpoints.schema_registry_url)
        self._serializers: dict[str, tuple[str, RegistryAvroSerializer]] = {}
        self._names: dict[str, str] = {}
        self.produced = 0
        self.acked = 0
        self.failed = 0
        self.queue_full = 0
        self._server = gevent.spawn(self._serve)

    def _serve(self) -> None:
        while True:
            self._producer.poll(0)
            gevent.sleep(SERVE_INTERVAL_S)

    def _serializer(self, dataset_name: str) -> tuple[str, RegistryAvroSerializer]:
        found = self._serializers.get(dataset_name)
        if found is None:
            dataset = self._catalogue.dataset(dataset_name)
            schema = latest_schema(dataset.schema_name)
            found = (
                dataset.topic.name,
                RegistryAvroSerializer(self._registry, dataset.subject, schema),
            )
            self._serializers[dataset_name] = found
            self._names[dataset.topic.name] = dataset_name
        return found

    def send(self, dataset_name: str, record: dict[str, Any]) -> None:
        """Serialize and hand one record to librdkafka; never waits."""
        topic, serializer = self._serializer(dataset_name)
        value = serializer(record, SerializationContext(topic, MessageField.VALUE))
        key = self._catalogue.dataset(dataset_name).record_key(record).encode()
        try:
            self._producer.produce(topic, value=value, key=key, on_delivery=self._on_delivery)
        except BufferError as e:
            self.queue_full += 1
            self._fire(
                request_type=REQUEST_TYPE,
                name=dataset_name,
                response_time=0.0,
                response_length=0,
                exception=e,
                context={"reason": "local queue full"},
            )
        else:
            self.produced += 1

    def poll(self) -> None:
        """Serve pending delivery reports without waiting."""
        self._producer.poll(0)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        latency = message.latency()
        if error is None:
            self.acked += 1
        else:
            self.failed += 1
        self._fire(
            request_type=REQUEST_TYPE,
            name=self._names.get(str(message.topic()), str(message.topic())),
            response_time=(latency or 0.0) * 1000,
            response_length=len(message.value() or b""),
            exception=None if error is None else KafkaException(error),
            context={"partition": message.partition(), "offset": message.offset()},
        )

    def close(self) -> int:
        """Flush (every record gets its delivery report); return how many are still unacked."""
        self._server.kill()
        remaining = int(self._producer.flush(FLUSH_TIMEOUT_S))
        self._registry.close()
        return remaining


class KafkaUser(User):
    """Base user: `self.kafka` produces, `self.market` generates realistic trades and quotes."""

    abstract = True

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        prefix = str(_option(environment, "k2_prefix", ""))
        catalogue = load_catalogue()
        self.catalogue = catalogue.with_prefix(prefix) if prefix else catalogue
        self.batch = int(_option(environment, "k2_batch", 25))
        self.market = MarketGenerator(run_id=uuid.uuid4().hex[:10])
        self._kafka: KafkaClient | None = None

    @property
    def kafka(self) -> KafkaClient:
        """The user's client (created in `on_start`)."""
        if self._kafka is None:
            self._kafka = KafkaClient(self.environment, self.catalogue, Endpoints())
        return self._kafka

    def on_start(self) -> None:
        """Create the producer (and look up schema ids) before the first task."""
        _ = self.kafka

    def on_stop(self) -> None:
        """Flush: the last records' delivery reports fire their request events."""
        if self._kafka is not None:
            self._kafka.close()

    def send_many(self, dataset_name: str, make: Callable[[], dict[str, Any]]) -> None:
        """Produce `batch` records made by `make`, then serve delivery reports (no waiting)."""
        kafka = self.kafka
        for _ in range(self.batch):
            kafka.send(dataset_name, make())
        kafka.poll()
