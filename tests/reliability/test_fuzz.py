"""Property-based fuzzing of the decoder, the validator and the Arrow batcher (no services).

Over 10,000 generated inputs per run (the sum of the `max_examples` below), derandomized so CI
is repeatable; `K2_FUZZ_SCALE=10` runs ten times as many (the long variant). Properties:
- arbitrary or mutated payloads never raise: every message ends up exactly once, as a row or
  as a dead letter with a reason (only K2's own error types are used for bad input);
- the fast path and the per-record path route and decode every batch identically;
- valid records round-trip exactly through K2's serializer → decoder → Arrow → batcher →
  table alignment → Python (Decimal and µs timestamps compared exactly);
- the validator agrees with a plain-Python oracle of its rules, row by row.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from k2.contracts.schemas import load_schema
from k2.errors import K2Error
from k2.ingest.batcher import Batcher
from k2.ingest.commit_policy import CommitPolicy
from k2.ingest.decoder import Decoder, DecodeResult
from k2.ingest.schemas import StaticSchemaSource, WriterSchemas
from k2.ingest.sink import align
from k2.ingest.validator import Validator
from k2.serde.avro import FramedAvroWriter
from k2.serde.wire import Framed

pytestmark = pytest.mark.reliability

SCALE = float(os.environ.get("K2_FUZZ_SCALE", "1"))
TOPIC = "k2.trades"
V1, V2, QUOTE = 1, 2, 3
TRADE = load_schema("trade", 2).full_name
TEXTS = {V1: load_schema("trade", 1).text, V2: load_schema("trade", 2).text}
TEXTS[QUOTE] = load_schema("quote", 1).text
ENCODERS = {v: FramedAvroWriter(load_schema("trade", v), v) for v in (V1, V2)}
MIN_EVENT_US = 631_152_000_000_000  # 1990-01-01, the worker's default floor
SKEW_S = 86_400.0
SIDES = ("BUY", "SELL", "UNKNOWN")


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


class Msg:
    """What the decoder reads from a Kafka message."""

    def __init__(self, value: bytes | None, offset: int, partition: int = 0) -> None:
        self._value = value
        self._offset = offset
        self._partition = partition

    def value(self) -> bytes | None:
        return self._value

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return None

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_767_225_600_000)


def decoder(*, fast: bool) -> Decoder:
    return Decoder(WriterSchemas(StaticSchemaSource(TEXTS), TRADE), fast=fast)


FAST, SLOW = decoder(fast=True), decoder(fast=False)
# The table's columns: the latest writer schema's (older writers' rows are aligned to it).
TABLE_ARROW: pa.Schema = WriterSchemas(StaticSchemaSource(TEXTS), TRADE).get(V2).arrow


# --- strategies ----------------------------------------------------------------------------
def _decimal(precision: int, scale: int = 8) -> st.SearchStrategy[Decimal]:
    bound = 10**precision - 1
    edges = st.sampled_from([0, 1, -1, bound, -bound, 10 ** (precision - 1)])
    unscaled = st.one_of(edges, st.integers(-bound, bound))
    return unscaled.map(lambda u: Decimal(u).scaleb(-scale))


_UTC_TIMES = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999_999)
).map(lambda d: d.replace(tzinfo=UTC))
_LONGS = st.integers(-(2**63), 2**63 - 1)
_TEXT = st.text(max_size=12)


@st.composite
def trades(draw: st.DrawFn, version: int) -> dict[str, Any]:
    record: dict[str, Any] = {
        "trade_id": draw(_TEXT),
        "exchange": draw(_TEXT),
        "symbol": draw(_TEXT),
        "instrument_id": draw(st.none() | _TEXT),
        "venue_sequence": draw(_LONGS),
        "event_time": draw(_UTC_TIMES),
        "event_time_nanos": draw(st.none() | _LONGS),
        "receive_time": draw(_UTC_TIMES),
        "price": draw(_decimal(18)),
        "size": draw(_decimal(28)),
        "currency": draw(_TEXT),
        "side": draw(st.sampled_from(SIDES)),
        "conditions": draw(st.lists(_TEXT, max_size=4)),
    }
    if version == V2:
        record["buyer_broker_id"] = draw(st.none() | _TEXT)
        record["seller_broker_id"] = draw(st.none() | _TEXT)
        record["settlement_date"] = draw(st.none() | st.dates(date(1, 1, 1), date(9999, 12, 31)))
    return record


versioned_trades = st.sampled_from([V1, V2]).flatmap(
    lambda v: trades(v).map(lambda record: (v, record))
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid framed trade with one corruption: flip, cut, insert, append or re-frame."""
    version, record = draw(versioned_trades)
    payload = bytearray(ENCODERS[version].encode(record))
    how = draw(st.sampled_from(["flip", "cut", "insert", "append", "reframe", "none"]))
    at = draw(st.integers(0, len(payload) - 1))
    if how == "flip":
        payload[at] ^= draw(st.integers(1, 255))
    elif how == "cut":
        del payload[at:]
    elif how == "insert":
        payload[at:at] = draw(st.binary(min_size=1, max_size=8))
    elif how == "append":
        payload += draw(st.binary(min_size=1, max_size=8))
    elif how == "reframe":
        payload[1:5] = draw(st.sampled_from([V1, V2, QUOTE, 0, 99])).to_bytes(4, "big")
    return bytes(payload)


payloads = st.one_of(
    st.none(),
    st.binary(max_size=64),
    st.binary(max_size=64).map(lambda b: Framed(V2, b).to_bytes()),
    st.binary(max_size=64).map(lambda b: Framed(V1, b).to_bytes()),
    mutated(),
)


# --- properties ----------------------------------------------------------------------------
def _routing(result: DecodeResult) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
    rows: dict[int, dict[str, Any]] = {}
    for chunk in result.chunks:
        for message, row in zip(chunk.messages, chunk.batch.to_pylist(), strict=True):
            assert message.offset() not in rows
            rows[int(message.offset() or 0)] = row
    dead: dict[int, str] = {}
    for letter in result.dead:
        offset = int(letter.message.offset() or 0)
        assert offset not in dead and offset not in rows
        assert letter.reason and letter.error_class
        dead[offset] = letter.reason
    return rows, dead


def _decode_both(values: Sequence[bytes | None]) -> DecodeResult:
    messages = [Msg(value, offset) for offset, value in enumerate(values)]
    try:
        fast = FAST.decode(messages)
        slow = SLOW.decode(messages)
    except K2Error as e:  # a K2 error escaping decode() would stop the worker
        pytest.fail(f"decode raised {e!r} instead of dead-lettering")
    fast_rows, fast_dead = _routing(fast)
    slow_rows, slow_dead = _routing(slow)
    assert set(fast_rows) | set(fast_dead) == set(range(len(values)))
    assert fast_dead == slow_dead
    assert fast_rows == slow_rows
    return fast


@fuzz(3_500)
@given(st.lists(payloads, min_size=1, max_size=6))
def test_any_payload_is_routed_once_and_both_paths_agree(values: list[bytes | None]) -> None:
    _decode_both(values)


@fuzz(3_000)
@given(st.lists(versioned_trades, min_size=1, max_size=5))
def test_valid_trades_round_trip_exactly(records: list[tuple[int, dict[str, Any]]]) -> None:
    values = [ENCODERS[version].encode(record) for version, record in records]
    result = _decode_both(values)
    assert not result.dead, [(d.reason, d.detail) for d in result.dead]

    # Arrow batcher, then resolution to the table's (v2) schema, then back to Python.
    batcher = Batcher(CommitPolicy(10**9, 10**12, 3600.0))
    batcher.assign((TOPIC, 0), None)
    batcher.consumed(
        sorted((m for c in result.chunks for m in c.messages), key=lambda m: m.offset())
    )
    for chunk in result.chunks:
        batcher.add_rows((TOPIC, 0), chunk.writer, chunk.batch)
    pending = batcher.take().partitions[(TOPIC, 0)]
    assert (pending.consumed, pending.written, pending.end) == (
        len(values),
        len(values),
        len(values),
    )
    landed: list[dict[str, Any]] = []
    for _writer, rows in pending.rows:
        landed.extend(align(rows, TABLE_ARROW).to_pylist())
    offsets = [m.offset() for chunk in result.chunks for m in chunk.messages]
    by_offset = dict(zip(offsets, landed, strict=True))
    for offset, (_version, record) in enumerate(records):
        _assert_exact(by_offset[offset], record)


def _assert_exact(row: dict[str, Any], record: dict[str, Any]) -> None:
    for name in TABLE_ARROW.names:
        expected = record.get(name)  # a v1 writer's record lacks v2's columns: null
        got = row[name]
        if isinstance(expected, Decimal):
            assert isinstance(got, Decimal)
            assert got.as_tuple() == expected.as_tuple(), (name, got, expected)
        elif isinstance(expected, datetime):
            assert got == expected and got.utcoffset() is not None, (name, got, expected)
        else:
            assert got == expected and type(got) is type(expected), (name, got, expected)


# --- the validator against an oracle ------------------------------------------------------
_BLANKISH = st.text(alphabet=" \tab", max_size=3)
_EVENT_US = st.one_of(
    st.sampled_from([MIN_EVENT_US - 1, MIN_EVENT_US, MIN_EVENT_US + 1, 0, -1]),
    st.integers(-(2**62), 2**62),
    st.integers(MIN_EVENT_US, 4_102_444_800_000_000),  # up to 2100
)


@st.composite
def validator_rows(draw: st.DrawFn) -> dict[str, Any]:
    row = draw(trades(V2))
    for name in ("trade_id", "exchange", "symbol", "currency"):
        row[name] = draw(_BLANKISH)
    row["event_time"] = draw(_EVENT_US)
    for name in ("price", "size"):
        row[name] = draw(st.sampled_from([Decimal(0), Decimal("-0.00000001"), Decimal(1)]))
    return row


def _oracle(row: dict[str, Any], now_us: int) -> str | None:
    for name in ("trade_id", "exchange", "symbol"):
        if not row[name].strip(" \t"):
            return f"empty_{name}"
    t = row["event_time"]
    if not MIN_EVENT_US <= t <= now_us + int(SKEW_S * 1_000_000):
        return "implausible_event_time"
    if not row["currency"].strip(" \t"):
        return "empty_currency"
    for name in ("price", "size"):
        if row[name] <= 0:
            return f"non_positive_{name}"
    return None


@fuzz(2_000)
@given(st.lists(validator_rows(), min_size=1, max_size=8))
def test_validator_agrees_with_its_oracle(rows: list[dict[str, Any]]) -> None:
    now_us = time.time_ns() // 1_000
    upper = now_us + int(SKEW_S * 1_000_000)
    assume(all(abs(r["event_time"] - upper) > 60_000_000 for r in rows))  # not on the moving edge
    batch = pa.RecordBatch.from_pylist(rows, schema=TABLE_ARROW)
    validator = Validator.for_dataset("trades", MIN_EVENT_US, SKEW_S)
    got = {r.row: r.reason for r in validator.rejections(batch)}
    expected = {i: reason for i, row in enumerate(rows) if (reason := _oracle(row, now_us))}
    assert got == expected


@fuzz(1_500)
@given(st.lists(trades(V2), min_size=1, max_size=6), st.data())
def test_validator_never_raises_on_any_values_or_nulls(
    rows: list[dict[str, Any]], data: st.DataObject
) -> None:
    # Nulls where the Arrow type allows them (the validator lets requiredness to the schema).
    nullable = [f.name for f in TABLE_ARROW if f.nullable]
    for row in rows:
        for name in data.draw(st.lists(st.sampled_from(nullable), max_size=4)):
            row[name] = None
    batch = pa.RecordBatch.from_pylist(rows, schema=TABLE_ARROW)
    rejections = Validator.for_dataset("trades", MIN_EVENT_US, SKEW_S).rejections(batch)
    assert all(0 <= r.row < len(rows) and r.reason for r in rejections)
    assert len({r.row for r in rejections}) == len(rejections)
