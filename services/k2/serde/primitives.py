"""Avro binary primitives by hand: long, bytes, string and decimal-on-bytes.

For code that writes Avro bytes by hand: the ingest fast path's object-container header, the
benchmark's trade encoder (fastavro's writer is too slow to pre-load millions of records) and
the bad-input test corpus (which must break one field's bytes exactly). Everything else encodes records through fastavro (`k2.serde.avro`).
"""

from __future__ import annotations


def encode_long(value: int) -> bytes:
    """Avro `int`/`long`: zigzag, then little-endian base-128 varint."""
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_bytes(raw: bytes) -> bytes:
    """Avro `bytes`: the length as a long, then the content."""
    return encode_long(len(raw)) + raw


def encode_string(text: str) -> bytes:
    """Avro `string`: UTF-8 `bytes`."""
    return encode_bytes(text.encode())


def encode_decimal(unscaled: int) -> bytes:
    """Avro `decimal` on `bytes`: big-endian two's complement of the unscaled value."""
    length = (unscaled.bit_length() + 8) // 8
    return encode_bytes(unscaled.to_bytes(length, "big", signed=True))
