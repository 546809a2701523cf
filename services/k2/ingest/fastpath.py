"""The decode→Arrow hot path: many Avro bodies of one writer schema decoded in one native pass.

Confluent-framed messages are Avro bodies behind a 5-byte header. Bodies of one writer schema,
concatenated, are exactly the data of an Avro object-container-file block, so a native reader
(polars, in Rust) decodes them all at once: no Python object per record or per value.

The danger is alignment: a block has no per-record boundaries, so one truncated body or one
with trailing bytes shifts every later record. `decode_block` therefore proves alignment
before trusting the result. For every decoded row it recomputes, from the decoded columns
(vectorised), the size of the row's canonical (shortest) Avro encoding and requires it to equal
that message's body length. Why that suffices: the reader consumed c_i bytes for row i, and the
canonical encoding of a value is never longer than any encoding of it, so r_i <= c_i. If r_i ==
len(body_i) for every i, then sum(c_i) >= the block's length; the reader cannot read past the
block (it fails instead), so sum(c_i) == the block's length and every c_i == len(body_i): each
row was decoded from exactly its own body. Anything else (non-canonical encoders, a schema
shape the size model does not cover, decimals beyond their precision, any reader error) makes
`decode_block` return None and the caller decodes per record, which also finds the bad records
for the dead-letter queue. (fastavro itself writes the decimals -2^(8k-1), e.g. -128 unscaled,
one byte longer than minimal: such blocks are declined and decoded per record, correctly.)
Values stay exact: decimals are read as decimal128 from their
unscaled bytes, never through float; timestamps are int64 microseconds, UTC.

Public, stable API (the benchmark harness calls these):
    decode_block(writer, bodies) -> pa.RecordBatch | None
    decode_per_record(writer, bodies) -> pa.RecordBatch   (the baseline: fastavro per record)
`writer` is a `k2.ingest.schemas.WriterSchema`; build one from a schema text with
`WriterSchemas(StaticSchemaSource({schema_id: text}), full_name).get(schema_id)`.
`bodies` are Avro bodies without the 5-byte Confluent header.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import fastavro
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from k2.ingest.errors import RecordError
from k2.ingest.quiet import quiet_native_stderr
from k2.ingest.schemas import WriterSchema
from k2.serde.primitives import encode_bytes, encode_long

_MAGIC = b"Obj\x01"
# Any 16 bytes do: the reader only checks that the block is followed by the header's marker.
_SYNC = b"K2-fastpath-sync"
# Unions and enums up to this many branches/symbols encode their index in one byte.
_ONE_BYTE_INDEX = 64
_FIXED_WIDTH = {"boolean": 1, "float": 4, "double": 8}
# Reader failures of any kind mean "not provable here": fall back, never fail.
_PANIC = "PanicException"
# Physical values of 0001-01-01T00:00:00 and 9999-12-31T23:59:59.999999 (Python's range).
_CALENDAR_RANGE = {
    "date": (-719_162, 2_932_896),
    "timestamp-millis": (-62_135_596_800_000, 253_402_300_799_999),
    "timestamp-micros": (-62_135_596_800_000_000, 253_402_300_799_999_999),
}
_READER_ERRORS = (pl.exceptions.PolarsError, OSError, ValueError, TypeError, OverflowError)


def decode_block(writer: WriterSchema, bodies: Sequence[bytes]) -> pa.RecordBatch | None:
    """Decode `bodies` (Avro bodies of `writer`) in one pass; row i comes from `bodies[i]`.

    Returns a record batch with schema `writer.arrow`, or None when the batch cannot be
    proven aligned and exact (then decode per record: `k2.ingest.decoder`).
    """
    if not bodies:
        return None
    return decode_array(writer, pa.array(bodies, type=pa.large_binary()))


def decode_array(writer: WriterSchema, bodies: pa.LargeBinaryArray) -> pa.RecordBatch | None:
    """`decode_block` over bodies already in one Arrow array (no Python object per body)."""
    if not len(bodies) or bodies.null_count:
        return None
    layout = _layout(writer.text)
    if layout is None:
        return None
    _validity, offsets, data = bodies.buffers()
    # The bodies are contiguous in the data buffer: the block is its slice between the first
    # and the last offset (int64, shifted by the array's own offset when it is a slice).
    bounds = memoryview(offsets).cast("q")
    start, end = bounds[bodies.offset], bounds[bodies.offset + len(bodies)]
    block = pa.py_buffer(b"") if data is None else data.slice(start, end - start)
    container = _container(writer.text, len(bodies), block)
    with quiet_native_stderr() as call:
        try:
            table = pl.read_avro(io.BytesIO(container)).to_arrow()
        except _READER_ERRORS:
            return None
        except BaseException as e:
            # A Rust panic inside the reader (e.g. an enum index out of range in corrupt bytes)
            # arrives as pyo3's PanicException, a BaseException: fall back like any reader
            # error, and keep its report out of the log stream (k2.ingest.quiet).
            if type(e).__name__ != _PANIC:
                raise
            call.panicked = True
            return None
    if table.num_rows != len(bodies):
        return None
    lengths = np.asarray(pc.binary_length(bodies).to_numpy(), dtype=np.int64)
    try:
        proven = layout.proven(table, lengths, block)
    except (*_READER_ERRORS, IndexError, pa.ArrowException):
        # A shape the model does not cover, or misaligned rows pointing outside the block.
        return None
    if not proven:
        return None
    return _to_writer_arrow(table, writer.arrow)


def decode_per_record(writer: WriterSchema, bodies: Sequence[bytes]) -> pa.RecordBatch:
    """The baseline: fastavro per record, then one Arrow build. RecordError on a bad body."""
    rows = [decode_body(writer, body) for body in bodies]
    return pa.RecordBatch.from_pylist(rows, schema=writer.arrow)


def decode_body(writer: WriterSchema, body: bytes) -> dict[str, Any]:
    """One Avro body → a dict; truncated bodies and trailing bytes are errors."""
    stream = io.BytesIO(body)
    try:
        record = fastavro.schemaless_reader(stream, writer.parsed, None)
    except EOFError as e:
        raise RecordError("truncated_body", f"body ends early: {e}") from e
    except (ValueError, TypeError, IndexError, KeyError, UnicodeDecodeError, OverflowError) as e:
        raise RecordError("undecodable_body", f"{type(e).__name__}: {e}") from e
    if stream.tell() != len(body):
        raise RecordError(
            "trailing_bytes", f"{len(body) - stream.tell()} bytes after the end of the record"
        )
    if not isinstance(record, dict):
        raise RecordError("undecodable_body", "body is not a record")
    return record


# --- the object container ---------------------------------------------------------------------
def _container(schema_text: str, count: int, block: pa.Buffer) -> bytes:
    """An uncompressed object container file holding `count` records (`block`) as one block."""
    header = b"".join(
        (
            _MAGIC,
            encode_long(2),
            encode_bytes(b"avro.schema"),
            encode_bytes(schema_text.encode()),
            encode_bytes(b"avro.codec"),
            encode_bytes(b"null"),
            encode_long(0),
            _SYNC,
        )
    )
    return b"".join((header, encode_long(count), encode_long(block.size), block, _SYNC))


# --- canonical encoded sizes, from the decoded Arrow columns ------------------------------------
# numpy over the columns' buffers, hand-written because no library models Avro's encoded sizes;
# numpy rather than polars expressions: a polars kernel costs ~20 ns per value here (one
# thread, 10k-row chunks), numpy ~1; the whole proof went from ~0.45 to ~0.1 µs per record.
_VARINT_LIMITS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)
# A two's complement value needs one more byte each time its magnitude reaches 2^(8k-1).
_LOW_WORD_LIMITS = np.array([1 << (8 * k + 7) for k in range(8)], dtype=np.uint64)
_HIGH_WORD_LIMITS = np.array([1 << (8 * k + 7) for k in range(7)], dtype=np.uint64)
_WORD = (1 << 64) - 1


def _varint_sizes(unsigned: np.ndarray) -> np.ndarray:
    """Bytes of the varints of unsigned 64-bit values (7 bits per byte)."""
    return np.searchsorted(_VARINT_LIMITS, unsigned, side="right").astype(np.int64) + 1


def _zigzag_sizes(values: np.ndarray) -> np.ndarray:
    """Bytes of the zigzag varints of signed 64-bit values (Avro int and long)."""
    v = values.astype(np.int64, copy=False)
    return _varint_sizes(((v << 1) ^ (v >> 63)).view(np.uint64))


def _single(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column


def _physical(column: pa.Array) -> np.ndarray:
    """Integer, date or timestamp values as int64 (nulls as 0)."""
    t = column.type
    if pa.types.is_temporal(t):
        column = column.view(pa.int32() if t.bit_width == 32 else pa.int64())
    return np.asarray(pc.fill_null(column, 0).to_numpy(zero_copy_only=False), dtype=np.int64)


def _lengths(column: pa.Array) -> np.ndarray:
    """Byte lengths of string or binary values (nulls as 0)."""
    return np.asarray(
        pc.fill_null(pc.binary_length(column), 0).to_numpy(zero_copy_only=False), dtype=np.int64
    )


def _length_prefixed(lengths: np.ndarray) -> np.ndarray:
    sized: np.ndarray = _zigzag_sizes(lengths) + lengths
    return sized


def _decimal_words(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A decimal128 column's values as (low word, unsigned; high word, signed)."""
    words = np.frombuffer(column.buffers()[1], dtype=np.int64)
    words = words[2 * column.offset : 2 * (column.offset + len(column))]
    return words[0::2].view(np.uint64), words[1::2]


def _decimal_sizes(column: pa.Array) -> np.ndarray:
    """Bytes of the minimal big-endian two's complement of each unscaled value, length-prefixed
    (at most 16 bytes: the prefix is one byte)."""
    low, high = _decimal_words(column)
    negative = high < 0
    # The magnitude that sets the length: v for v >= 0, ~v (= -v - 1) below.
    low = np.where(negative, ~low, low)
    high = np.where(negative, ~high, high).view(np.uint64)
    count = np.where(
        high > 0,
        len(_LOW_WORD_LIMITS) + np.searchsorted(_HIGH_WORD_LIMITS, high, side="right"),
        np.searchsorted(_LOW_WORD_LIMITS, low, side="right"),
    ).astype(np.int64)
    return 2 + count  # one prefix byte, then 1 + count bytes


def _decimal_fits(column: pa.Array, precision: int) -> bool:
    """-10^precision < v < 10^precision for every non-null unscaled value (128-bit compares
    on the two words)."""
    low, high = _decimal_words(column)
    limit = 10**precision
    over_high, over_low = limit >> 64, limit & _WORD
    under = (1 << 128) - limit
    under_high, under_low = (under >> 64) - (1 << 64), under & _WORD
    below = (high < over_high) | ((high == over_high) & (low < np.uint64(over_low)))
    above = (high > under_high) | ((high == under_high) & (low > np.uint64(under_low)))
    fits = below & above
    if column.null_count:
        fits |= ~np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return bool(fits.all())


def _string_array_sizes(column: pa.Array) -> np.ndarray:
    """One block (count, items) then the 0 terminator; an empty array is the terminator alone."""
    counts = np.asarray(
        pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False),
        dtype=np.int64,
    )
    items = _length_prefixed(_lengths(pc.list_flatten(column)))
    running = np.concatenate(([0], np.cumsum(items)))
    ends = np.cumsum(counts)
    per_row = running[ends] - running[ends - counts]
    return np.where(counts == 0, 1, _zigzag_sizes(counts) + per_row + 1)


@dataclass(frozen=True)
class _Field:
    """How one field's canonical encoded size is computed, and its value limits."""

    name: str
    kind: str  # long, string, bytes, decimal, fixed, string_array
    width: int = 0  # fixed: bytes per value
    null_branch: int | None = None  # a ["null", T] union: where "null" is among the branches
    precision: int | None = None  # decimal: digits allowed
    calendar: tuple[int, int] | None = None  # date/timestamp: physical range allowed

    def sizes(self, column: pa.Array) -> np.ndarray | int:
        if self.kind == "long":
            inner: np.ndarray | int = _zigzag_sizes(_physical(column))
        elif self.kind in ("string", "bytes"):
            inner = _length_prefixed(_lengths(column))
        elif self.kind == "decimal":
            inner = _decimal_sizes(column)
        elif self.kind == "string_array":
            inner = _string_array_sizes(column)
        else:
            inner = self.width
        if self.null_branch is None:
            return inner
        return 1 + np.where(_valid(column), inner, 0)

    def fits(self, column: pa.Array) -> bool:
        if self.precision is not None:
            return _decimal_fits(column, self.precision)
        if self.calendar is not None:
            low, high = self.calendar
            values = _physical(column)
            inside = (values >= low) & (values <= high)
            if column.null_count:
                inside |= ~_valid(column)
            return bool(inside.all())
        return True


def _valid(column: pa.Array) -> np.ndarray:
    return np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


@dataclass(frozen=True)
class _Layout:
    """The fields' size models, in schema order."""

    fields: list[_Field]

    def proven(self, table: pa.Table, lengths: np.ndarray, block: pa.Buffer) -> bool:
        """Whether the decoded rows are proven aligned and exact.

        Row sizes: every row's canonical size equals its body's length (see the module doc).
        Values: every one is one the per-record path accepts too, so both paths route alike
        (decimals within their precision, as Arrow requires; dates and timestamps within
        years 1..9999, beyond which fastavro fails and the record is dead-lettered).
        Branch bytes: every union's branch byte is 0 or 1 (zigzag 0x00/0x02) and matches
        null-ness. The reader treats any other branch index as the value branch, which has the
        same size, so the size proof cannot see it; fastavro rejects it. Once rows are aligned
        the byte offset of each field is known (body start plus the sizes of the fields before
        it): read the branch bytes straight from the block.
        """
        columns = [_single(table.column(f.name)) for f in self.fields]
        sizes = [f.sizes(c) for f, c in zip(self.fields, columns, strict=True)]
        total = np.zeros(len(lengths), dtype=np.int64)
        for size in sizes:
            total += size
        if not np.array_equal(total, lengths):
            return False
        if not all(f.fits(c) for f, c in zip(self.fields, columns, strict=True)):
            return False
        data = np.frombuffer(block, dtype=np.uint8)
        offset = np.cumsum(lengths) - lengths
        for f, column, size in zip(self.fields, columns, sizes, strict=True):
            if f.null_branch is not None:
                null_byte, value_byte = 2 * f.null_branch, 2 * (1 - f.null_branch)
                expected = np.where(_valid(column), value_byte, null_byte)
                if not np.array_equal(data[offset], expected):
                    return False
            offset = offset + size
        return True


def _field(name: str, avro: Any) -> _Field | None:
    """The size model of one field of Avro type `avro`; None: not modelled."""
    null_branch = None
    if isinstance(avro, list):
        others = [b for b in avro if b != "null"]
        if len(avro) != 2 or len(others) != 1:  # ["null", T] only
            return None
        null_branch, avro = avro.index("null"), others[0]
    type_name = avro if isinstance(avro, str) else avro.get("type")
    logical = avro.get("logicalType") if isinstance(avro, dict) else None
    if logical == "decimal" and type_name == "bytes":
        return _Field(name, "decimal", null_branch=null_branch, precision=int(avro["precision"]))
    if type_name in ("int", "long"):
        return _Field(
            name, "long", null_branch=null_branch, calendar=_CALENDAR_RANGE.get(logical or "")
        )
    if type_name in ("string", "bytes") and logical is None:
        return _Field(name, type_name, null_branch=null_branch)
    if type_name in _FIXED_WIDTH:
        return _Field(name, "fixed", width=_FIXED_WIDTH[type_name], null_branch=null_branch)
    if type_name == "enum" and len(avro["symbols"]) <= _ONE_BYTE_INDEX:
        return _Field(name, "fixed", width=1, null_branch=null_branch)
    if type_name == "array" and avro.get("items") == "string":
        return _Field(name, "string_array", null_branch=null_branch)
    return None


@functools.lru_cache(maxsize=256)
def _layout(schema_text: str) -> _Layout | None:
    """The size model of record schema `schema_text`; None when some field type is not
    modelled. Cached: built once per writer schema, not per block."""
    fields = [_field(f["name"], f["type"]) for f in json.loads(schema_text)["fields"]]
    if any(f is None for f in fields):
        return None
    return _Layout([f for f in fields if f is not None])


# --- to the writer's Arrow schema --------------------------------------------------------------
def _to_writer_arrow(table: pa.Table, schema: pa.Schema) -> pa.RecordBatch | None:
    """Cast the reader's columns to exactly `schema` (string enums, list field names)."""
    try:
        columns = []
        for target in schema:
            column = table.column(target.name).combine_chunks()
            if not column.type.equals(target.type):
                column = column.cast(target.type)
            columns.append(column)
        return pa.RecordBatch.from_arrays(columns, schema=schema)
    except (KeyError, pa.ArrowException) as e:
        _ = e  # a shape the cast does not cover: the per-record path handles it
        return None
