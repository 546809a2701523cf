"""Decode Confluent-framed Avro into Arrow record batches, one batch per writer schema.

Messages are grouped by schema id (order kept within each group) and each group is decoded
in one go: with the fast path (`k2.ingest.fastpath`, a native object-container-file reader
over the concatenated bodies, verified record by record) when it is enabled and succeeds,
otherwise per record with fastavro, which also pinpoints the bad records for the DLQ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from k2.ingest.dlq import DeadLetter
from k2.ingest.errors import RecordError
from k2.ingest.fastpath import decode_array, decode_block, decode_body
from k2.ingest.schemas import WriterSchema, WriterSchemas
from k2.ingest.source import RawMessage
from k2.serde.wire import HEADER_SIZE, Framed, WireFormatError


@dataclass(frozen=True)
class DecodedChunk:
    """Rows decoded with one writer schema; row i came from `messages[i]`."""

    writer: WriterSchema
    batch: pa.RecordBatch
    messages: Sequence[RawMessage]


@dataclass(frozen=True)
class DecodeResult:
    """What a poll chunk decoded into: good rows by writer schema, and dead letters."""

    chunks: list[DecodedChunk]
    dead: list[DeadLetter]
    value_bytes: int = 0  # raw bytes of the chunk's message values


# Every reason the decoder (with `k2.ingest.fastpath` and `k2.ingest.schemas`) dead-letters for.
DECODE_REASONS = (
    "empty_value",
    "bad_framing",
    "unknown_schema_id",
    "unsupported_schema",
    "wrong_schema",
    "truncated_body",
    "undecodable_body",
    "trailing_bytes",
    "invalid_value",
)
# Below this many records a declined block is decoded per record rather than halved again.
PER_RECORD_BELOW = 256


class Decoder:
    """Decodes messages of one dataset."""

    def __init__(self, schemas: WriterSchemas, *, fast: bool = True) -> None:
        self._schemas = schemas
        self._fast = fast

    def close(self) -> None:
        """Release the registry connection."""
        self._schemas.close()

    def decode(self, messages: Sequence[RawMessage]) -> DecodeResult:
        """Decode `messages`; every message ends up in exactly one chunk row or dead letter."""
        values = [message.value() for message in messages]
        uniform = self._uniform(messages, values) if self._fast else None
        if uniform is not None:
            return uniform
        groups: dict[int, tuple[WriterSchema, list[RawMessage], list[bytes]]] = {}
        dead: list[DeadLetter] = []
        # Group by the 5 header bytes themselves (magic byte + schema id): no object and no
        # struct unpack per message; only a header seen for the first time is parsed.
        headers: dict[bytes, tuple[WriterSchema, list[RawMessage], list[bytes]] | None] = {}
        for message, value in zip(messages, values, strict=True):
            header = value[:HEADER_SIZE] if value is not None else None
            group = headers.get(header) if header is not None else None
            if group is None:
                try:
                    framed = Framed.parse(value)
                except WireFormatError as e:
                    reason = "empty_value" if value is None else "bad_framing"
                    dead.append(DeadLetter(message, reason, type(e).__name__, str(e)))
                    continue
                group = groups.get(framed.schema_id)
                if group is None:
                    try:
                        writer = self._schemas.get(framed.schema_id)
                    except RecordError as e:
                        dead.append(DeadLetter(message, e.reason, type(e).__name__, e.detail))
                        continue
                    group = groups[framed.schema_id] = (writer, [], [])
                headers[value[:HEADER_SIZE]] = group  # type: ignore[index]
            group[1].append(message)
            group[2].append(value[HEADER_SIZE:])  # type: ignore[index]
        chunks: list[DecodedChunk] = []
        for writer, group_messages, bodies in groups.values():
            self._decode_group(writer, group_messages, bodies, chunks, dead)
        value_bytes = sum(len(value) for value in values if value is not None)
        return DecodeResult(chunks, dead, value_bytes)

    def _uniform(
        self, messages: Sequence[RawMessage], values: list[bytes | None]
    ) -> DecodeResult | None:
        """The common case without any Python per message: every value carries the same
        5-byte header and the whole chunk decodes as one proven block. None: anything else
        (a null value, another header, an unknown schema, a declined block), which the general
        path then groups, decodes and dead-letters message by message."""
        first = values[0] if values else None
        if first is None or len(first) < HEADER_SIZE:
            return None
        array = pa.array(values, type=pa.large_binary())
        if array.null_count:
            return None  # a null value (tombstone): the general path dead-letters it
        header = first[:HEADER_SIZE]
        same = pc.equal(
            pc.binary_slice(array, 0, HEADER_SIZE), pa.scalar(header, pa.large_binary())
        )
        if not pc.all(same).as_py():
            return None
        try:
            writer = self._schemas.get(Framed.parse(header).schema_id)
        except (WireFormatError, RecordError):
            return None
        lengths = pc.binary_length(array)
        # stop = the longest value ("to the end"): pyarrow 21 fails on stop=None and sizes
        # its output from the stop ("Negative buffer resize" on overflow).
        longest = pc.max(lengths).as_py()
        batch = decode_array(writer, pc.binary_slice(array, HEADER_SIZE, longest))
        if batch is None:
            return None
        value_bytes = pc.sum(lengths).as_py()
        return DecodeResult([DecodedChunk(writer, batch, messages)], [], value_bytes)

    def _decode_group(
        self,
        writer: WriterSchema,
        messages: Sequence[RawMessage],
        bodies: Sequence[bytes],
        chunks: list[DecodedChunk],
        dead: list[DeadLetter],
    ) -> None:
        """Fast path on the whole group; when it declines, halve (a bad record then costs
        about log2(n) extra block decodes, not the whole group per record), down to
        `PER_RECORD_BELOW` records, which are decoded per record."""
        if self._fast:
            batch = decode_block(writer, bodies)
            if batch is not None:
                chunks.append(DecodedChunk(writer, batch, messages))
                return
            if len(bodies) >= PER_RECORD_BELOW:
                half = len(bodies) // 2
                self._decode_group(writer, messages[:half], bodies[:half], chunks, dead)
                self._decode_group(writer, messages[half:], bodies[half:], chunks, dead)
                return
        chunk, group_dead = decode_with_dead_letters(writer, messages, bodies)
        dead.extend(group_dead)
        if chunk is not None:
            chunks.append(chunk)


def decode_with_dead_letters(
    writer: WriterSchema, messages: Sequence[RawMessage], bodies: Sequence[bytes]
) -> tuple[DecodedChunk | None, list[DeadLetter]]:
    """The reference path: fastavro per record, then one Arrow build; bad records → DLQ."""
    rows: list[dict[str, Any]] = []
    kept: list[RawMessage] = []
    dead: list[DeadLetter] = []
    for message, body in zip(messages, bodies, strict=True):
        try:
            rows.append(decode_body(writer, body))
            kept.append(message)
        except RecordError as e:
            dead.append(DeadLetter(message, e.reason, type(e).__name__, e.detail))
    if not rows:
        return None, dead
    try:
        batch = pa.RecordBatch.from_pylist(rows, schema=writer.arrow)
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        # Some value does not fit its column (e.g. a decimal wider than its precision):
        # build row by row to find the culprits, then once more for the good ones.
        good_rows, good_messages = [], []
        for row, message in zip(rows, kept, strict=True):
            try:
                pa.RecordBatch.from_pylist([row], schema=writer.arrow)
            except (pa.ArrowException, ValueError, TypeError, OverflowError) as e:
                dead.append(DeadLetter(message, "invalid_value", type(e).__name__, str(e)))
                continue
            good_rows.append(row)
            good_messages.append(message)
        if not good_rows:
            return None, dead
        rows, kept = good_rows, good_messages
        batch = pa.RecordBatch.from_pylist(rows, schema=writer.arrow)
    return DecodedChunk(writer, batch, kept), dead
