"""(e) The decode→Arrow hot path alone, against the plain per-record baseline, same run.

Baseline: fastavro `schemaless_reader` per record, then one `RecordBatch.from_pylist` — the
straightforward way. K2: `k2.ingest.fastpath.decode_block`, what the worker's decoder tries
first. Best of `repeats` for each; the fast path's output must equal the baseline's.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from typing import Any

import fastavro
import pyarrow as pa

from k2.bench.encoding import trade_bodies
from k2.contracts.schemas import latest_schema
from k2.ingest.fastpath import decode_block
from k2.ingest.schemas import StaticSchemaSource, WriterSchema, WriterSchemas

SCHEMA_ID = 1


def trade_writer() -> WriterSchema:
    """The latest trade schema as the ingest decoder sees it."""
    schema = latest_schema("trade")
    return WriterSchemas(StaticSchemaSource({SCHEMA_ID: schema.text}), schema.full_name).get(
        SCHEMA_ID
    )


def baseline(writer: WriterSchema, bodies: Sequence[bytes]) -> pa.RecordBatch:
    """Per-record fastavro decode, then one Arrow build."""
    parsed = writer.parsed
    rows = [fastavro.schemaless_reader(io.BytesIO(b), parsed, None) for b in bodies]
    return pa.RecordBatch.from_pylist(rows, schema=writer.arrow)


def _best(action: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        out = action()
        best = min(best, time.perf_counter() - started)
    return best, out


def run(records: int = 200_000, repeats: int = 3) -> dict[str, Any]:
    """Records/s of both paths over the same bodies, and their ratio."""
    writer = trade_writer()
    bodies = [body for _, body in trade_bodies("hot", records)]
    base_s, expected = _best(lambda: baseline(writer, bodies), repeats)
    result: dict[str, Any] = {
        "records": records,
        "repeats": repeats,
        "avg_body_bytes": round(sum(map(len, bodies)) / records, 1),
        "baseline": {"seconds": round(base_s, 4), "records_per_s": round(records / base_s)},
    }
    fast_s, batch = _best(lambda: decode_block(writer, bodies), repeats)
    if batch is None:
        result["fast_path"] = {"available": False}
        result["ratio"] = None
        return result
    result["fast_path"] = {
        "available": True,
        "seconds": round(fast_s, 4),
        "records_per_s": round(records / fast_s),
        "equal_to_baseline": bool(batch.equals(expected)),
    }
    result["ratio"] = round(base_s / fast_s, 2)
    return result
