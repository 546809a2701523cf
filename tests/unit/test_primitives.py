"""k2.serde.primitives writes exactly what fastavro writes (and reads back)."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import fastavro
from hypothesis import given
from hypothesis import strategies as st

from k2.serde.primitives import encode_bytes, encode_decimal, encode_long, encode_string

DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 8}


def _fastavro(schema: Any, value: Any) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), value)
    return buffer.getvalue()


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_long(value: int) -> None:
    assert encode_long(value) == _fastavro("long", value)


@given(st.text())
def test_string(text: str) -> None:
    assert encode_string(text) == _fastavro("string", text)


@given(st.binary())
def test_bytes(raw: bytes) -> None:
    assert encode_bytes(raw) == _fastavro("bytes", raw)


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_decimal_reads_back_exactly(unscaled: int) -> None:
    body = io.BytesIO(encode_decimal(unscaled))
    value = fastavro.schemaless_reader(body, fastavro.parse_schema(DECIMAL), None)
    assert value == Decimal(f"{unscaled}E-8")  # from a string: exact, no context rounding
