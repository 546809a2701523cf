"""Fixtures for ingest integration tests: a bootstrapped, prefixed catalogue and a producer."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from pyiceberg.catalog import Catalog

from k2.bootstrap import bootstrap
from k2.catalog import load_catalog
from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.contracts.schemas import load_schema
from k2.delivery import produce_all
from k2.ingest.app import build_worker
from k2.ingest.config import IngestSettings
from k2.ingest.worker import IngestWorker
from k2.serde.serializer import RegistryAvroSerializer, registry_client
from k2.settings import CatalogPrincipal, Endpoints, endpoint_env_names

BASE_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
_ids = itertools.count()


@dataclass
class Env:
    stack: Endpoints
    prefix: str
    catalogue: Catalogue
    catalog: Catalog
    registry: SchemaRegistryClient

    def trade(self, n: int, **overrides: Any) -> dict[str, Any]:
        record: dict[str, Any] = {
            "trade_id": f"T{n}",
            "exchange": "XASX",
            "symbol": ["BHP", "CBA", "RIO"][n % 3],
            "instrument_id": None,
            "venue_sequence": n,
            "event_time": BASE_US + n,
            "event_time_nanos": None,
            "receive_time": BASE_US + n + 5,
            "price": Decimal("45.12345678") + Decimal(n) / Decimal(100),
            "size": Decimal(100 + n),
            "currency": "AUD",
            "side": "BUY",
            "conditions": ["XT"],
        }
        record.update(overrides)
        return record

    def produce(
        self,
        records: list[dict[str, Any]],
        version: int = 2,
        raw: list[bytes | None] | None = None,
        table: str = "trades",
    ) -> None:
        dataset = self.catalogue.dataset(table)
        schema_name = {"trades": "trade", "quotes": "quote"}.get(table, table)
        serializer = RegistryAvroSerializer(
            self.registry,  # the fixture's client: closed once, at teardown
            dataset.subject,
            load_schema(schema_name, version),
        )
        producer = Producer(
            {"bootstrap.servers": self.stack.kafka_bootstrap_servers, "enable.idempotence": True}
        )
        produce_all(
            producer,
            dataset.topic.name,
            [
                *((dataset.record_key(record), serializer(record)) for record in records),
                *((b"BHP", value) for value in raw or []),
            ],
            timeout_s=30,
        )

    def worker(self, table: str = "trades", **settings: Any) -> IngestWorker:
        base = {"max_age_s": 0.3, "dlq_min_records": 10_000}
        return build_worker(
            table,
            self.stack,
            IngestSettings(**{**base, **settings}),
            prefix=self.prefix,
            registry=CollectorRegistry(),
        )

    def rows(self, table: str = "trades") -> list[dict[str, Any]]:
        loaded = self.catalog.load_table(self.catalogue.dataset(table).table_identifier)
        return loaded.scan().to_arrow().to_pylist()

    def properties(self, table: str = "trades") -> dict[str, str]:
        loaded = self.catalog.load_table(self.catalogue.dataset(table).table_identifier)
        return dict(loaded.properties)

    def counts(self, table: str = "trades") -> dict[str, int]:
        """Cumulative consumed / written / dead_lettered over all partitions (table properties)."""
        props = self.properties(table)
        return {
            kind: sum(
                int(v)
                for key, v in props.items()
                if key.startswith("k2.count.") and key.endswith("." + kind)
            )
            for kind in ("consumed", "written", "dead_lettered")
        }

    def env_vars(self) -> dict[str, str]:
        """The K2_* endpoint variables of the stack (for subprocesses and the CLI), with only
        the ingest principal's catalog credential: workers must do their job with it."""
        ingest = CatalogPrincipal.INGEST
        values = {ingest.env_name: self.stack.catalog_credential(ingest)}
        for name in endpoint_env_names():
            value = getattr(self.stack, name.removeprefix("K2_").lower())
            plain = value.get_secret_value() if isinstance(value, SecretStr) else value
            values[name] = str(plain)
        return values

    def spawn(
        self, log_path: Path, fault: str | None = None, **settings: str
    ) -> subprocess.Popen[bytes]:
        """`k2 ingest run --table trades` as a subprocess (so it can be kill -9'd)."""
        env = {**os.environ, **self.env_vars(), "K2_INGEST_MAX_AGE_S": "0.2"}
        env.update({f"K2_INGEST_{k.upper()}": v for k, v in settings.items()})
        env.pop("K2_INGEST_FAULT", None)
        if fault is not None:
            env["K2_INGEST_FAULT"] = fault
        command = [str(Path(sys.executable).parent / "k2"), "ingest", "run"]
        with log_path.open("ab") as log:
            return subprocess.Popen(
                [*command, "--table", "trades", "--prefix", self.prefix],
                env=env,
                stdout=log,
                stderr=log,
            )


@pytest.fixture
def env(stack: Endpoints, unique: str) -> Iterator[Env]:
    catalogue = load_catalogue().with_prefix(unique)
    catalog = load_catalog(stack, CatalogPrincipal.ADMIN)  # bootstraps the prefix
    with registry_client(stack.schema_registry_url) as registry:
        bootstrap(
            catalogue,
            admin=AdminClient({"bootstrap.servers": stack.kafka_bootstrap_servers}),
            registry=registry,
            catalog=catalog,
        )
        yield Env(stack, unique, catalogue, catalog, registry)
    catalog.close()  # pyiceberg's public lifecycle: closes the REST session


@pytest.fixture
def running() -> Iterator[Callable[[IngestWorker], threading.Thread]]:
    """Start workers on threads; stop and join them at the end."""
    started: list[tuple[IngestWorker, threading.Thread]] = []

    def start(worker: IngestWorker) -> threading.Thread:
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        started.append((worker, thread))
        return thread

    yield start
    for worker, thread in started:
        worker.stop()
        thread.join(60)


def kill9(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL, no goodbye."""
    process.send_signal(signal.SIGKILL)
    process.wait(30)


def wait_for(predicate: Callable[[], bool], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("condition not reached in time")
