"""A plain message value for unit tests of pure steps (the same fields Kafka hands over)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import fastavro

from k2.contracts.schemas import load_schema
from k2.serde.wire import Framed

TOPIC = "k2.trades"


@dataclass
class Msg:
    payload: bytes | None
    off: int
    part: int = 0
    hdrs: list[tuple[str, bytes]] = field(default_factory=list)

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self.part

    def offset(self) -> int:
        return self.off

    def value(self) -> bytes | None:
        return self.payload

    def key(self) -> bytes | None:
        return b"BHP"

    def headers(self) -> list[tuple[str, bytes]]:
        return self.hdrs

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_767_225_600_000)


def encode(record: dict[str, Any], version: int = 1, schema_id: int = 1) -> bytes:
    schema = load_schema("trade", version)
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema.parsed, record)
    return Framed(schema_id, body.getvalue()).to_bytes()
