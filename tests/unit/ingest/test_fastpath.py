"""The fast decode path: identical to the per-record path, or it declines (never wrong)."""

from __future__ import annotations

import io
import random
from decimal import Decimal
from typing import Any

import fastavro
import pyarrow as pa
import pytest

from k2.contracts.schemas import load_schema
from k2.ingest.errors import RecordError
from k2.ingest.fastpath import decode_block, decode_per_record
from k2.ingest.schemas import StaticSchemaSource, WriterSchema, WriterSchemas

from .helpers import encode

BASE_US = 1_767_225_600_000_000


def writer(name: str = "trade", version: int = 2) -> WriterSchema:
    schema = load_schema(name, version)
    return WriterSchemas(StaticSchemaSource({7: schema.text}), schema.full_name).get(7)


def trade(n: int) -> dict[str, Any]:
    return {
        "trade_id": f"T{n}" * (1 + n % 7),
        "exchange": "XASX",
        "symbol": "BHP",
        "instrument_id": None if n % 2 else "AU000000BHP4",
        "venue_sequence": n * (1 + n % 40) ** 9,
        "event_time": BASE_US + n,
        "event_time_nanos": None if n % 3 else -n * 10**9,
        "receive_time": BASE_US + n,
        "price": Decimal("45.12345678") + n,
        "size": Decimal(10 ** (n % 20)) + Decimal("0.5"),
        "currency": "AUD",
        "side": ["BUY", "SELL", "UNKNOWN"][n % 3],
        "conditions": ["XT" * (n % 80), "Q"][: n % 3],
        "buyer_broker_id": None,
        "seller_broker_id": "S",
        "settlement_date": None if n % 2 else 20_000 - n,
    }


def bodies(count: int, version: int = 2) -> list[bytes]:
    return [encode(trade(i), version=version, schema_id=7)[5:] for i in range(count)]


@pytest.mark.parametrize("version", [1, 2])
def test_fast_equals_per_record_with_exact_types(version: int) -> None:
    w = writer(version=version)
    clean = bodies(500, version)
    fast = decode_block(w, clean)
    assert fast is not None
    assert fast.equals(decode_per_record(w, clean))
    assert fast.schema.equals(w.arrow, check_metadata=True)
    assert fast.schema.field("price").type == pa.decimal128(18, 8)
    assert fast.schema.field("size").type == pa.decimal128(28, 8)
    assert fast.schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert fast.column("price")[3].as_py() == Decimal("48.12345678")


def test_quotes_and_reference_data_take_the_fast_path() -> None:
    for name, record in (
        (
            "quote",
            {
                "quote_id": "Q1",
                "exchange": "XASX",
                "symbol": "BHP",
                "event_time": BASE_US,
                "receive_time": BASE_US,
                "venue_sequence": 1,
                "bid_price": Decimal("1.5"),
                "bid_size": None,
                "ask_price": None,
                "ask_size": Decimal("3"),
                "currency": "AUD",
                "bid_order_count": 4,
            },
        ),
        (
            "reference_data",
            {
                "exchange": "XASX",
                "symbol": "BHP",
                "instrument_id": "AU000000BHP4",
                "name": "BHP",
                "currency": "AUD",
                "valid_from": 19_000,
                "valid_to": None,
                "event_time": BASE_US,
                "receive_time": BASE_US,
            },
        ),
    ):
        schema = load_schema(name, 1)
        w = WriterSchemas(StaticSchemaSource({1: schema.text}), schema.full_name).get(1)
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema.parsed, record)
        clean = [out.getvalue()] * 3
        fast = decode_block(w, clean)
        assert fast is not None, name
        assert fast.equals(decode_per_record(w, clean)), name


def _corrupt(rng: random.Random, values: list[bytes]) -> list[bytes]:
    out = list(values)
    i = rng.randrange(len(out))
    body = bytearray(out[i])
    kind = rng.randrange(4)
    if kind == 0:
        body = body[: rng.randrange(len(body))]  # truncated
    elif kind == 1:
        body += bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))  # trailing bytes
    elif kind == 2:
        body[rng.randrange(len(body))] = rng.randrange(256)  # flipped byte
    else:
        j = rng.randrange(len(body))
        body = body[:j] + bytes([rng.randrange(256)]) + body[j:]  # inserted byte
    out[i] = bytes(body)
    if rng.random() < 0.3 and i + 1 < len(out) and len(out[i]) > 1:
        # Move the boundary: the block's total length stays the same.
        k = rng.randrange(1, len(out[i]))
        out[i], out[i + 1] = out[i][:k], out[i][k:] + out[i + 1]
    return out


def test_corrupt_blocks_are_declined_or_decoded_identically() -> None:
    w = writer()
    clean = bodies(40)
    rng = random.Random(20260101)
    accepted = 0
    for _ in range(1500):
        values = _corrupt(rng, clean[: rng.randint(1, 30)])
        fast = decode_block(w, values)
        if fast is None:
            continue
        accepted += 1  # e.g. a flipped character inside a string: still a valid record
        assert fast.equals(decode_per_record(w, values))
    assert accepted > 0


def test_union_branch_out_of_range_is_declined() -> None:
    w = writer(version=1)
    body = bytearray(encode(trade(1), version=1, schema_id=7)[5:])
    # trade(1): instrument_id is null → its branch byte sits after three strings.
    offset = sum(1 + len(s) for s in ("T1T1", "XASX", "BHP"))
    assert body[offset] == 0
    body[offset] = 4  # branch 2 of a two-branch union
    with pytest.raises(RecordError):
        decode_per_record(w, [bytes(body)])
    assert decode_block(w, [*bodies(3, 1), bytes(body)]) is None


def test_decimal_beyond_precision_is_declined() -> None:
    w = writer(version=1)
    wide = trade(1)
    wide["price"] = Decimal("12345678901.5")  # 19 digits at scale 8 > precision 18
    values = [*bodies(2, 1), encode(wide, version=1, schema_id=7)[5:]]
    assert decode_block(w, values) is None


def test_non_canonical_encoding_is_declined_not_misread() -> None:
    w = writer(version=1)
    record = {**trade(0), "instrument_id": None}
    body = encode(record, version=1, schema_id=7)[5:]
    # Same value, venue_sequence 0 written as a two-byte varint (valid Avro, not canonical).
    offset = sum(1 + len(s) for s in ("T0", "XASX", "BHP")) + 1  # after instrument_id
    assert body[offset] == 0
    padded = body[:offset] + b"\x80\x00" + body[offset + 1 :]
    assert decode_per_record(w, [padded]).equals(decode_per_record(w, [body]))
    assert decode_block(w, [padded]) is None


def test_empty_input_is_declined() -> None:
    assert decode_block(writer(), []) is None
