"""k2.bench without services: the JSON document of a tiny hot-path run, and its helpers."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import fastavro
import pytest
import typer

from k2.bench import results
from k2.bench.__main__ import PARTS, _parts, run_parts
from k2.bench.encoding import trade_bodies
from k2.bench.synthetic import MarketGenerator
from k2.bench.visibility import percentile, summary
from k2.contracts.schemas import latest_schema
from k2.serde.avro import FramedAvroWriter


def test_hotpath_run_document_shape(tmp_path: Path) -> None:
    document = run_parts(
        ["hotpath"],
        records=0,
        hot_records=2_000,
        rates=(),
        rate_seconds=0,
        logs=tmp_path,
    )
    assert set(document) == {
        "k2_bench",
        "started_at",
        "finished_at",
        "command",
        "machine_at_start",
        "machine_at_end",
        "parts",
        "targets",
    }
    assert list(document["parts"]) == ["hotpath"]
    hot = document["parts"]["hotpath"]
    assert hot["records"] == 2_000
    assert set(hot["baseline"]) == {"seconds", "records_per_s"}
    if hot["fast_path"]["available"]:
        assert hot["fast_path"]["equal_to_baseline"] is True
        assert set(hot["fast_path"]) >= {"seconds", "records_per_s"}
        assert isinstance(hot["ratio"], float)
    else:
        assert hot["ratio"] is None
    # Throughput and CPU are judged twice: from the workers' launch and from their assignment.
    from_assignment = {
        "ingest_two_workers_records_per_s_from_assignment",
        "worker_cpu_s_per_million_from_assignment",
    }
    assert set(document["targets"]) == set(results.TARGETS) | from_assignment
    assert document["targets"]["ingest_two_workers_records_per_s"]["measured"] is None
    assert document["targets"]["hotpath_ratio"]["measured"] == hot["ratio"]
    assert {"cpus", "loadavg", "git_commit"} <= set(document["machine_at_start"])
    written = results.write(document, tmp_path / "results")
    assert json.loads(written.read_text()) == document


def test_parts_selection() -> None:
    assert _parts(None) == list(PARTS)
    assert _parts("hotpath, rss") == ["hotpath", "rss"]
    with pytest.raises(typer.BadParameter):
        _parts("hotpath,nonsense")


def test_direct_encoder_writes_what_fastavro_reads() -> None:
    schema = latest_schema("trade")
    for key, body in trade_bodies("u", 500):
        stream = io.BytesIO(body)
        record = fastavro.schemaless_reader(stream, schema.parsed, None)
        assert stream.tell() == len(body)
        assert record["symbol"].encode() == key
        assert record["price"] == record["price"].quantize(Decimal("0.005"))
        assert record["size"] > 0


def test_generator_records_fit_their_schemas() -> None:
    market = MarketGenerator("u")
    trades = FramedAvroWriter(latest_schema("trade"), 1)
    quotes = FramedAvroWriter(latest_schema("quote"), 2)
    ids = set()
    for _ in range(300):
        trade, quote = market.trade(), market.quote()
        trades.encode(trade)
        quotes.encode(quote)
        ids.update((trade["trade_id"], quote["quote_id"]))
    assert len(ids) == 600


def test_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([], 50) is None
    assert summary([]) == {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
