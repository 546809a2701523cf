"""Golden wire vectors: K2's serializer writes them byte for byte; the reference decoder reads them.

The ingest decoder has its own test over the same files (tests/contract/vectors/*.bin + .json).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from k2.contracts.schemas import load_schema
from k2.serde.avro import FramedAvroWriter, decode_body
from k2.serde.wire import HEADER_SIZE, Framed, WireFormatError

from .vectors.cases import CASES, to_json

VECTORS = Path(__file__).parent / "vectors"
IDS = [f"{n}.v{v}.{c}" for (n, v, c) in CASES]


@pytest.mark.parametrize(("key", "vector_id"), list(zip(CASES, IDS, strict=True)), ids=IDS)
def test_serializer_writes_the_golden_bytes(key: tuple[str, int, str], vector_id: str) -> None:
    name, version, _ = key
    schema_id, record = CASES[key]
    payload = FramedAvroWriter(load_schema(name, version), schema_id).encode(record)
    expected = {
        "schema": name,
        "version": version,
        "schema_id": schema_id,
        "record": to_json(record),
    }
    if os.environ.get("K2_REGEN_VECTORS") == "1":
        (VECTORS / f"{vector_id}.bin").write_bytes(payload)
        (VECTORS / f"{vector_id}.json").write_text(
            json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
        )
    assert payload == (VECTORS / f"{vector_id}.bin").read_bytes()
    assert json.loads((VECTORS / f"{vector_id}.json").read_text()) == expected


@pytest.mark.parametrize("vector_id", IDS)
def test_reference_decoder_reads_the_golden_bytes(vector_id: str) -> None:
    expected = json.loads((VECTORS / f"{vector_id}.json").read_text())
    framed = Framed.parse((VECTORS / f"{vector_id}.bin").read_bytes())
    assert framed.schema_id == expected["schema_id"]
    record = decode_body(load_schema(expected["schema"], expected["version"]), framed.body)
    assert to_json(record) == expected["record"]


def test_framing_round_trip_and_fast_failures() -> None:
    payload = Framed(258, b"\x02ab").to_bytes()
    assert payload == b"\x00\x00\x00\x01\x02\x02ab"
    assert Framed.parse(payload) == Framed(258, b"\x02ab")
    with pytest.raises(WireFormatError, match=f"shorter than the {HEADER_SIZE}-byte") as short:
        Framed.parse(b"\x00\x00")
    assert short.value.payload == b"\x00\x00"
    with pytest.raises(WireFormatError, match="unknown magic byte 1"):
        Framed.parse(b"\x01\x00\x00\x00\x01")
    with pytest.raises(WireFormatError, match="tombstone"):
        Framed.parse(None)
