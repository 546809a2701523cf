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
for the dead-letter queue. Values stay exact: decimals are read as decimal128 from their
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
_LENGTH = "__k2_body_length"  # the bodies' lengths, beside the decoded columns
_SIZE = "__k2_size_"  # + field position: the field's canonical encoded size, per row
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
            frame = pl.read_avro(io.BytesIO(container))
            if frame.height != len(bodies):
                return None
            # The whole proof is one query, unoptimised: eager calls cost ~150 µs each and the
            # optimiser's passes cost more than they save on a plan this small (measured: 1.0
            # → 0.75 µs per record on 50k-record blocks).
            lengths = pl.Series(_LENGTH, pc.binary_length(bodies)).cast(pl.Int64)
            checks = (
                frame.lazy()
                .with_columns(lengths, *layout.with_sizes())
                .select(layout.checks(block))
                .collect(optimizations=pl.QueryOptFlags.none())
            )
            proven = all(checks.row(0))
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
    if not proven:
        return None
    return _to_writer_arrow(frame.to_arrow(), writer.arrow)


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


# --- canonical encoded sizes, as polars expressions ------------------------------------------
def _varint_size(value: pl.Expr, bits: int) -> pl.Expr:
    """Bytes of the zigzag varint of a signed integer column of width `bits`."""
    magnitude = pl.when(value >= 0).then(value).otherwise(value.not_())
    # zigzag(v) has bit length bitlen(magnitude) + 1; a varint carries 7 bits per byte.
    zigzag_bits = (bits + 1) - magnitude.bitwise_leading_zeros().cast(pl.Int64)
    return (zigzag_bits + 6) // 7


def _length_prefixed(length: pl.Expr) -> pl.Expr:
    return _varint_size(length, 64) + length


def _decimal_bytes(unscaled: pl.Expr) -> pl.Expr:
    """Bytes of the minimal big-endian two's complement of an Int128 column."""
    magnitude = pl.when(unscaled >= 0).then(unscaled).otherwise(unscaled.not_())
    with_sign = 129 - magnitude.bitwise_leading_zeros().cast(pl.Int64)
    return (with_sign + 7) // 8


def _type_size(avro: Any, column: pl.Expr) -> pl.Expr | None:
    """Canonical encoded size of one value of Avro type `avro` in `column`; None: unsupported."""
    if isinstance(avro, list):
        return _union_size(avro, column)
    name = avro if isinstance(avro, str) else avro.get("type")
    logical = avro.get("logicalType") if isinstance(avro, dict) else None
    if logical == "decimal" and name == "bytes":
        return _length_prefixed(_decimal_bytes(column.to_physical().cast(pl.Int128)))
    if name in ("int", "long"):
        return _varint_size(column.to_physical().cast(pl.Int64), 64)
    if name == "string":
        return _length_prefixed(column.str.len_bytes().cast(pl.Int64))
    if name == "bytes" and logical is None:
        return _length_prefixed(column.bin.size().cast(pl.Int64))
    if name in _FIXED_WIDTH:
        return pl.lit(_FIXED_WIDTH[name], dtype=pl.Int64)
    if name == "enum" and len(avro["symbols"]) <= _ONE_BYTE_INDEX:
        return pl.lit(1, dtype=pl.Int64)
    if name == "array" and avro.get("items") == "string":
        return _string_array_size(column)
    return None


def _union_size(branches: list[Any], column: pl.Expr) -> pl.Expr | None:
    """`["null", T]` in either order: one byte of branch index, then T when not null."""
    others = [b for b in branches if b != "null"]
    if len(branches) != 2 or len(others) != 1:
        return None
    inner = _type_size(others[0], column)
    if inner is None:
        return None
    return 1 + pl.when(column.is_null()).then(0).otherwise(inner)


def _string_array_size(column: pl.Expr) -> pl.Expr:
    """One block (count, items) then the 0 terminator; an empty array is the terminator alone."""
    count = column.list.len().cast(pl.Int64)
    lengths = column.list.eval(pl.element().str.len_bytes().cast(pl.Int64))
    items = lengths.list.eval(_length_prefixed(pl.element())).list.sum()
    return pl.when(count == 0).then(1).otherwise(_varint_size(count, 64) + items + 1)


@dataclass(frozen=True)
class _Layout:
    """Per field, its canonical encoded size; where the nullable unions are; value limits."""

    sizes: list[pl.Expr]
    # (field position, column, position of "null" among the union's two branches)
    unions: list[tuple[int, str, int]]
    values_fit: pl.Expr

    def checks(self, block: pa.Buffer) -> list[pl.Expr]:
        """Boolean aggregates, all true iff the decoded rows are proven aligned and exact.

        Row sizes: every row's canonical size equals its body's length (see the module doc).
        Branch bytes: every union's branch byte is 0 or 1 (zigzag 0x00/0x02) and matches
        null-ness. The reader treats any other branch index as the value branch, which has the
        same size, so the size proof cannot see it; fastavro rejects it. Once rows are aligned
        the byte offset of each field is known (body start plus the sizes of the fields before
        it): read the branch bytes straight from the block. (Were rows misaligned, an offset
        may fall outside the block: the query fails, and the caller falls back too.)
        """
        length = pl.col(_LENGTH)
        sizes = [pl.col(f"{_SIZE}{position}") for position in range(len(self.sizes))]
        checks = [
            (pl.sum_horizontal(sizes) == length).all().alias("sizes"),
            self.values_fit.alias("values"),
        ]
        if self.unions:
            data = pl.lit(
                pl.Series("block", pa.Array.from_buffers(pa.uint8(), block.size, [None, block]))
            )
            offset = length.cum_sum() - length
            unions = {position: (column, null) for position, column, null in self.unions}
            for position in range(max(unions) + 1):
                if position in unions:
                    column, null_branch = unions[position]
                    found = data.gather(offset).cast(pl.Int64)
                    is_null = pl.col(column).is_null()
                    expected = pl.when(is_null).then(null_branch).otherwise(1 - null_branch) * 2
                    checks.append((found == expected).all().alias(f"branch_{position}"))
                offset = offset + sizes[position]
        return checks

    def with_sizes(self) -> list[pl.Expr]:
        """The per-field size columns the checks read."""
        return [size.alias(f"{_SIZE}{position}") for position, size in enumerate(self.sizes)]


@functools.lru_cache(maxsize=256)
def _layout(schema_text: str) -> _Layout | None:
    """The size model of record schema `schema_text`; None when some field type is not
    modelled. Cached: a writer schema's expressions are built once, not per block."""
    raw = json.loads(schema_text)
    sizes: list[pl.Expr] = []
    unions: list[tuple[int, str, int]] = []
    for position, field in enumerate(raw["fields"]):
        size = _type_size(field["type"], pl.col(field["name"]))
        if size is None:
            return None
        sizes.append(size)
        if isinstance(field["type"], list):
            unions.append((position, field["name"], field["type"].index("null")))
    return _Layout(sizes, unions, _values_fit(raw))


def _values_fit(raw: dict[str, Any]) -> pl.Expr:
    """Every value is one the per-record path accepts too, so both paths route alike.

    Decimals: at most `precision` digits (as Arrow requires). Dates and timestamps: within
    years 1..9999 (beyond them fastavro fails and the record is dead-lettered).
    """
    checks = [pl.lit(value=True)]
    for field in raw["fields"]:
        avro = field["type"]
        if isinstance(avro, list):
            avro = next((b for b in avro if b != "null"), None)
        logical = avro.get("logicalType") if isinstance(avro, dict) else None
        column = pl.col(field["name"]).to_physical()
        if logical == "decimal":
            limit = 10 ** int(avro["precision"])
            unscaled = column.cast(pl.Int128)
            # Both bounds as literals: Int128 negation is not supported at run time.
            below = unscaled < pl.lit(limit, dtype=pl.Int128)
            above = unscaled > pl.lit(-limit, dtype=pl.Int128)
            checks.append((below & above).fill_null(value=True).all())
        elif logical in _CALENDAR_RANGE:
            low, high = _CALENDAR_RANGE[logical]
            checks.append(column.cast(pl.Int64).is_between(low, high).fill_null(value=True).all())
    return pl.all_horizontal(checks)


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
