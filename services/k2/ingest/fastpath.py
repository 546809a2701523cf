"""Placeholder replaced below."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from k2.ingest.schemas import WriterSchema


def decode_block(writer: WriterSchema, bodies: Sequence[bytes]) -> pa.RecordBatch | None:
    """None: use the per-record path."""
    return None
