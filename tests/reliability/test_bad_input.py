"""The bad-input corpus through one real worker: every message lands once, where designed.

One run over the whole corpus (fast): each message is accounted for by identity, either as a
table row (its `trade_id`) or as a dead letter (its `k2.test.id` header, kept by the DLQ) with
the designed reason header; nothing is lost, nothing is written twice, the worker never stops.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema
from prometheus_client import CollectorRegistry

from k2 import kafka
from k2.contracts.schemas import load_schema
from k2.delivery import produce_all
from k2.ingest.app import build_worker
from k2.ingest.config import IngestSettings
from k2.ingest.dlq import HEADER_REASON, HEADER_SOURCE_TOPIC
from k2.ingest.worker import IngestWorker
from k2.serde.serializer import RegistryAvroSerializer

from .conftest import Lake
from .corpus import (
    TEST_ID_HEADER,
    WRITTEN,
    Kind,
    SchemaIds,
    build_corpus,
    expected_price,
    known_bug_kinds,
)

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.integration,
    # The registry client's HTTP pool drops pooled sockets unclosed (as in tests/integration).
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

V3_FIELD = "venue_flag"
WAIT_S = 120.0


def _register_schemas(lake: Lake, unique: str) -> SchemaIds:
    """v1/v2 from bootstrap, a v3 the table has not seen, a quote id, a non-record schema."""
    trades = lake.catalogue.dataset("trades")
    ids = {
        v: RegistryAvroSerializer(lake.registry, trades.subject, load_schema("trade", v)).schema_id
        for v in (1, 2)
    }
    v3 = json.loads(load_schema("trade", 2).text)
    v3["fields"].append(
        {"name": V3_FIELD, "type": ["null", "string"], "default": None, "doc": "test-only v3"}
    )
    v3_id = lake.registry.register_schema(trades.subject, Schema(json.dumps(v3), "AVRO"))
    quote = lake.registry.get_latest_version(lake.catalogue.dataset("quotes").subject)
    junk = lake.registry.register_schema(f"{unique}junk-value", Schema('"string"', "AVRO"))
    nullable = json.loads(load_schema("trade", 2).text)
    for field in nullable["fields"]:
        if field["name"] == "symbol":
            field["type"] = ["null", "string"]
    nullable_id = lake.registry.register_schema(
        f"{unique}careless-value", Schema(json.dumps(nullable), "AVRO")
    )
    return SchemaIds(
        ids[1], ids[2], int(v3_id), int(quote.schema_id or 0), int(junk), int(nullable_id)
    )


def _produce(lake: Lake, kinds: list[Kind]) -> int:
    topic = lake.catalogue.dataset("trades").topic.name
    producer = kafka.producer(
        lake.stack.kafka_bootstrap_servers,
        **{"enable.idempotence": True, "message.max.bytes": 2 * 1024 * 1024},
    )
    return produce_all(
        producer,
        topic,
        (
            (message.key, message.value, [(TEST_ID_HEADER, message.test_id.encode())])
            for kind in kinds
            for message in kind.messages
        ),
        timeout_s=30,
    )


def _consumed(lake: Lake) -> int:
    table = lake.catalog.load_table(lake.catalogue.dataset("trades").table_identifier)
    return sum(
        int(v)
        for k, v in table.properties.items()
        if k.startswith("k2.count.") and k.endswith(".consumed")
    )


def _dead_letters(lake: Lake, expected: int) -> list[tuple[str, str, str]]:
    """(test id, reason, source topic) of every record in the DLQ topic."""
    consumer = kafka.consumer(
        lake.stack.kafka_bootstrap_servers,
        **{
            "group.id": f"{lake.prefix}dlq-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        },
    )
    consumer.subscribe([lake.catalogue.dataset("trades").dlq_topic])
    found: list[tuple[str, str, str]] = []
    deadline = time.monotonic() + 30
    try:
        # Read until the expected count, then a little longer: extra letters must show up too.
        quiet_until = None
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                if len(found) >= expected:
                    quiet_until = quiet_until or time.monotonic() + 3
                    if time.monotonic() > quiet_until:
                        break
                continue
            assert message.error() is None, message.error()
            headers = {k: (v or b"").decode() for k, v in message.headers() or []}
            found.append(
                (headers[TEST_ID_HEADER], headers[HEADER_REASON], headers[HEADER_SOURCE_TOPIC])
            )
    finally:
        consumer.close()
    return found


def _sample(worker: IngestWorker, name: str, **labels: str) -> float:
    value = worker.metrics.registry.get_sample_value(
        name, {"table": worker.metrics.table, **labels}
    )
    return value or 0.0


def test_every_bad_input_is_routed_as_designed(lake: Lake, unique: str) -> None:
    kinds = build_corpus(_register_schemas(lake, unique))
    assert len(kinds) >= 25
    worker, rows, dead = _run_corpus(lake, kinds)
    _assert_accounted(kinds, rows, dead, lake.catalogue.dataset("trades").topic.name)
    _assert_exact_rows(kinds, rows)

    # Flags: one gap (S_GAP 1,2,5) and one out-of-order (S_OOO 1,2,3,2), nothing else.
    assert _sample(worker, "k2_sequence_gaps_total") == 1
    assert _sample(worker, "k2_out_of_order_total") == 1
    reasons = Counter(reason for _, reason, _ in dead)
    for reason, count in reasons.items():
        assert _sample(worker, "k2_records_dead_lettered_total", reason=reason) == count
    assert _sample(worker, "k2_records_written_total") == len(rows)
    assert _sample(worker, "k2_records_consumed_total") == len(rows) + len(dead)


def test_null_where_required_is_dead_lettered(lake: Lake, unique: str) -> None:
    kinds = known_bug_kinds(_register_schemas(lake, unique))
    _worker, rows, dead = _run_corpus(lake, kinds)
    _assert_accounted(kinds, rows, dead, lake.catalogue.dataset("trades").topic.name)


def _run_corpus(
    lake: Lake, kinds: list[Kind]
) -> tuple[IngestWorker, list[dict[str, Any]], list[tuple[str, str, str]]]:
    """Produce `kinds`, run one worker until it consumed them all, return rows and letters."""
    produced = _produce(lake, kinds)
    worker = build_worker(
        "trades",
        lake.stack,
        # The corpus is mostly bad on purpose: the budget must not stop this run.
        IngestSettings(max_age_s=0.3, dlq_min_records=10_000),
        prefix=lake.prefix,
        registry=CollectorRegistry(),
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as e:  # the test fails on any crash, with its cause
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while _consumed(lake) < produced and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.5)
    assert thread.is_alive(), f"worker stopped: {errors!r}"
    worker.stop()
    thread.join(60)
    assert not errors, errors
    assert _consumed(lake) == produced

    table = lake.catalog.load_table(lake.catalogue.dataset("trades").table_identifier)
    rows = table.scan().to_arrow().to_pylist()
    expected_dead = sum(len(k.messages) for k in kinds if k.outcome != WRITTEN)
    return worker, rows, _dead_letters(lake, expected_dead)


def _assert_accounted(
    kinds: list[Kind], rows: list[dict[str, Any]], dead: list[tuple[str, str, str]], topic: str
) -> None:
    """produced = written + dead-lettered, per kind and by identity; nothing twice."""
    written = Counter(row["trade_id"] for row in rows)
    lettered = Counter(test_id for test_id, _, _ in dead)
    reason_of = {test_id: reason for test_id, reason, _ in dead}
    assert {source for _, _, source in dead} <= {topic}
    problems: list[str] = []
    produced_ids: set[str] = set()
    for kind in kinds:
        for message in kind.messages:
            produced_ids.add(message.test_id)
            places = written[message.test_id] + lettered[message.test_id]
            if places != 1:
                problems.append(f"{kind.name}/{message.test_id}: found {places} times")
            elif kind.outcome == WRITTEN and not written[message.test_id]:
                why = reason_of[message.test_id]
                problems.append(f"{kind.name}: dead-lettered ({why}), expected written")
            elif kind.outcome != WRITTEN and reason_of.get(message.test_id) != kind.outcome:
                where = reason_of.get(message.test_id, "written")
                problems.append(f"{kind.name}: {where}, expected {kind.outcome}")
    strays = (set(written) | set(lettered)) - produced_ids
    assert not strays, f"rows or letters nobody produced: {sorted(strays)}"
    assert not problems, "\n".join(problems)


def _assert_exact_rows(kinds: list[Kind], rows: list[dict[str, Any]]) -> None:
    """Written kinds land exactly: unicode symbols byte for byte, decimals, new columns."""
    by_id = {row["trade_id"]: row for row in rows}
    for kind in kinds:
        if kind.outcome != WRITTEN:
            continue
        row = by_id[kind.messages[0].test_id]
        if kind.symbol is not None:
            assert row["symbol"] == kind.symbol, kind.name
        price = expected_price(kind.name)
        if price is not None:
            assert row["price"] == price
            assert row["size"] == Decimal("0.00000001")
    assert by_id["newer_schema_v3-0"][V3_FIELD] == "flag-v3"  # table evolved before the write
    assert by_id["older_schema_v1-0"]["buyer_broker_id"] is None
    assert by_id["dup-0"]["price"] == Decimal("45.12345678")
    assert len(by_id["oversized_message-0"]["conditions"][0]) == 700_000
