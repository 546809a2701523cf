"""The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the Avro body.

One small value object, `Framed`, so producers, decoders and the DLQ agree on the framing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from k2.errors import K2Error

MAGIC_BYTE = 0
HEADER = struct.Struct(">bI")
HEADER_SIZE = HEADER.size  # 5 bytes
MAX_SCHEMA_ID = 2**32 - 1


class WireFormatError(K2Error):
    """A payload is not in the Confluent wire format. Carries the raw payload for the DLQ."""

    def __init__(self, message: str, payload: bytes) -> None:
        super().__init__(message)
        self.payload = payload


@dataclass(frozen=True, slots=True)
class Framed:
    """A schema id and the Avro body it frames."""

    schema_id: int
    body: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.schema_id <= MAX_SCHEMA_ID:
            raise K2Error(f"schema id {self.schema_id} is outside 0..{MAX_SCHEMA_ID}")

    def to_bytes(self) -> bytes:
        """The framed payload: header then body."""
        return HEADER.pack(MAGIC_BYTE, self.schema_id) + self.body

    @classmethod
    def parse(cls, payload: bytes | None) -> Framed:
        """Split a payload into schema id and body; fail fast with a clear message."""
        if payload is None:
            raise WireFormatError("payload is null (a tombstone?), expected a framed record", b"")
        if len(payload) < HEADER_SIZE:
            raise WireFormatError(
                f"payload of {len(payload)} bytes is shorter than the {HEADER_SIZE}-byte"
                " wire-format header",
                payload,
            )
        magic, schema_id = HEADER.unpack_from(payload)
        if magic != MAGIC_BYTE:
            raise WireFormatError(
                f"unknown magic byte {magic} (expected {MAGIC_BYTE}): not Confluent-framed",
                payload,
            )
        return cls(schema_id, payload[HEADER_SIZE:])
