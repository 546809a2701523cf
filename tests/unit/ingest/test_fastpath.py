"""The fast decode path: identical to the per-record path, or it declines (never wrong)."""

from __future__ import annotations

import io
import random
from decimal import Decimal
from typing import Any

import fastavro
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("price", Decimal("12345678901.5")),  # 19 digits at scale 8 > precision 18
        ("price", Decimal("-10000000000")),  # -10^18 unscaled: one digit too many
        ("size", Decimal("100000000000000000000")),  # 10^28 unscaled > precision 28
        ("event_time", 253_402_300_800_000_000),  # year 10000: fastavro cannot read it
        ("settlement_date", -719_163),  # the day before 0001-01-01
    ],
)
def test_values_the_per_record_path_rejects_are_declined(column: str, value: object) -> None:
    w = writer(version=2)
    wide = {**trade(1), column: value}
    values = [*bodies(2), encode(wide, version=2, schema_id=7)[5:]]
    assert decode_block(w, values) is None
    edge = {
        **wide,
        column: Decimal("-9999999999.99999999") if column == "price" else trade(1)[column],
    }
    assert decode_block(w, [*bodies(2), encode(edge, version=2, schema_id=7)[5:]]) is not None


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


def _near_powers(bits: int) -> st.SearchStrategy[int]:
    """Signed integers next to the powers of two (where encoded sizes change), and any."""
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    edges = sorted(
        {
            min(high, max(low, sign * 2**e + d))
            for e in range(bits - 1)
            for d in (-1, 0, 1)
            for sign in (1, -1)
        }
    )
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def _fastavro_minimal(unscaled: int) -> bool:
    """fastavro writes -2^(8k-1) in one byte more than its minimal two's complement (-128 as
    ff80, not 80): a longer encoding, which the fast path declines by design."""
    return not (unscaled < 0 and (-unscaled).bit_count() == 1 and (-unscaled).bit_length() % 8 == 0)


def _decimal(digits: int) -> st.SearchStrategy[Decimal]:
    """Unscaled values within `digits` digits, many at two's-complement byte boundaries."""
    limit = 10**digits - 1
    edges = st.sampled_from(
        sorted(
            {
                max(-limit, min(limit, s * 2 ** (8 * k - 1) + d))
                for k in range(1, 13)
                for d in (-1, 0, 1)
                for s in (1, -1)
            }
        )
    )
    unscaled = st.one_of(edges, st.sampled_from([limit, -limit, 0, -1]), st.integers(-limit, limit))
    return unscaled.filter(_fastavro_minimal).map(lambda u: Decimal(u).scaleb(-8))


_TEXT = st.one_of(
    st.text(max_size=8),
    st.integers(60, 70).map(lambda n: "x" * n),  # the length varint grows at 64
    st.integers(8188, 8196).map(lambda n: "é" * (n // 2)),  # and at 8192 (2-byte chars)
)
_DAY = st.integers(-719_162, 2_932_896)  # years 1..9999


@st.composite
def _edge_trade(draw: st.DrawFn) -> dict[str, Any]:
    return {
        **trade(0),
        "trade_id": draw(_TEXT),
        "symbol": draw(_TEXT),
        "instrument_id": draw(st.none() | _TEXT),
        "venue_sequence": draw(_near_powers(64)),
        "event_time": draw(_DAY) * 86_400_000_000 + draw(st.integers(0, 86_399_999_999)),
        "event_time_nanos": draw(st.none() | _near_powers(64)),
        "price": draw(_decimal(18)),
        "size": draw(_decimal(28)),
        "side": draw(st.sampled_from(["BUY", "SELL", "UNKNOWN"])),
        "conditions": draw(st.lists(st.text(max_size=3), max_size=70)),
        "buyer_broker_id": draw(st.none() | _TEXT),
        "settlement_date": draw(st.none() | _DAY),
    }


@settings(max_examples=60, deadline=None)
@given(st.lists(_edge_trade(), min_size=1, max_size=12))
def test_size_model_accepts_every_canonical_record_at_the_size_edges(
    records: list[dict[str, Any]],
) -> None:
    """Every value the schema allows, at the edges where varint, string and decimal encodings
    change length, takes the fast path and decodes exactly as fastavro does."""
    w = writer()
    values = [encode(r, version=2, schema_id=7)[5:] for r in records]
    fast = decode_block(w, values)
    assert fast is not None
    assert fast.equals(decode_per_record(w, values))


def test_a_longer_than_minimal_decimal_is_declined_and_decoded_per_record() -> None:
    w = writer()
    record = {**trade(1), "size": Decimal(-(2**63)).scaleb(-8)}
    values = [*bodies(3), encode(record, version=2, schema_id=7)[5:]]
    assert decode_block(w, values) is None
    assert decode_per_record(w, values).column("size")[3].as_py() == record["size"]
