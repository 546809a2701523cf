"""End to end against the local stack: counts, contents, DLQ routing, v1/v2 interleaving."""

from __future__ import annotations

import struct
from collections.abc import Callable
from decimal import Decimal

import pyarrow.parquet as pq
import pytest

from .conftest import Env, wait_for

pytestmark = [
    pytest.mark.integration,
]


def _offsets_done(env: Env, expected_consumed: int) -> bool:
    props = env.properties()
    consumed = sum(
        int(v) for k, v in props.items() if k.startswith("k2.count.") and k.endswith(".consumed")
    )
    return consumed >= expected_consumed


def test_records_land_exactly_with_bad_ones_dead_lettered(env: Env, running: Callable) -> None:
    good_v2 = [env.trade(n, buyer_broker_id=f"B{n}") for n in range(0, 300, 2)]
    good_v1 = [env.trade(n) for n in range(1, 300, 2)]
    bad = [
        env.trade(1000, price=Decimal("-1")),
        env.trade(1001, size=Decimal(0)),
        env.trade(1002, symbol=""),
        env.trade(1003, event_time=0),
    ]
    env.produce(good_v2 + bad, version=2)
    env.produce(good_v1, version=1, raw=[b"not avro", None, struct.pack(">bI", 0, 999_999) + b"x"])
    total = len(good_v2) + len(good_v1) + len(bad) + 3

    worker = env.worker()
    running(worker)
    wait_for(lambda: _offsets_done(env, total))

    rows = env.rows()
    assert sorted(r["trade_id"] for r in rows) == sorted(f"T{n}" for n in range(300))
    by_id = {r["trade_id"]: r for r in rows}
    assert by_id["T2"]["buyer_broker_id"] == "B2"
    assert by_id["T3"]["buyer_broker_id"] is None  # v1 writer: new column is null
    assert by_id["T7"]["price"] == Decimal("45.12345678") + Decimal("0.07")
    props = env.properties()
    kinds = ("consumed", "written", "dead_lettered")
    totals = {
        k: sum(
            int(v)
            for key, v in props.items()
            if key.startswith("k2.count.") and key.endswith("." + k)
        )
        for k in kinds
    }
    assert totals == {"consumed": total, "written": 300, "dead_lettered": 7}


def test_data_files_carry_their_true_size_and_a_dictionary_only_where_values_repeat(
    env: Env, running: Callable
) -> None:
    env.produce([env.trade(n) for n in range(200)], version=2)
    running(env.worker())
    wait_for(lambda: _offsets_done(env, 200))

    table = env.catalog.load_table(env.catalogue.dataset("trades").table_identifier)
    files = [task.file for task in table.scan().plan_files()]
    assert files
    assert sum(f.record_count for f in files) == 200
    for data_file in files:
        stored = table.io.new_input(data_file.file_path)
        assert data_file.file_size_in_bytes == len(stored)  # the stream's length, not a HEAD
        with stored.open() as stream:
            parquet = pq.ParquetFile(stream)
            group = parquet.metadata.row_group(0)
            dictionary = {
                group.column(i).path_in_schema: group.column(i).has_dictionary_page
                for i in range(group.num_columns)
            }
            ids = {f.name: f.field_id for f in table.schema().fields}
            assert parquet.schema_arrow.field("trade_id").metadata[b"PARQUET:field_id"] == (
                str(ids["trade_id"]).encode()
            )
        assert dictionary["symbol"] and dictionary["price"]  # values that repeat
        # The identity (unique by contract), sequence numbers and times never repeat much.
        assert not dictionary["trade_id"]
        assert not dictionary["venue_sequence"]
        assert not dictionary["event_time"]
        assert data_file.value_counts and data_file.lower_bounds  # statistics as pyiceberg's
