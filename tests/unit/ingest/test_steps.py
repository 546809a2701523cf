"""Unit tests of the pure ingest steps."""

from __future__ import annotations

import random
import struct
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from k2.contracts.schemas import load_schema
from k2.ingest.batcher import Batcher
from k2.ingest.commit_policy import CommitPolicy
from k2.ingest.decoder import Decoder
from k2.ingest.dedup import US_PER_DAY, TableIdentities, identity_frame
from k2.ingest.dlq import DeadLetter, DlqBudget
from k2.ingest.errors import DlqBudgetExceededError
from k2.ingest.schemas import StaticSchemaSource, WriterSchemas
from k2.ingest.sequence import SequenceTracker
from k2.ingest.sink import align
from k2.ingest.validator import Validator

from .helpers import Msg, encode

BASE_US = 1_767_225_600_000_000


def trade(n: int, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "trade_id": f"T{n}",
        "exchange": "XASX",
        "symbol": "BHP",
        "instrument_id": None,
        "venue_sequence": n,
        "event_time": BASE_US + n,
        "event_time_nanos": None,
        "receive_time": BASE_US + n,
        "price": Decimal("45.12345678"),
        "size": Decimal("100"),
        "currency": "AUD",
        "side": "BUY",
        "conditions": [],
    }
    record.update(overrides)
    return record


def decoder(fast: bool = False) -> Decoder:
    texts = {
        1: load_schema("trade", 1).text,
        2: load_schema("trade", 2).text,
        3: load_schema("quote", 1).text,
    }
    expected = load_schema("trade", 1).full_name
    return Decoder(WriterSchemas(StaticSchemaSource(texts), expected), fast=fast)


def test_commit_policy_flushes_on_any_limit() -> None:
    policy = CommitPolicy(max_records=10, max_bytes=100, max_age_s=1.0)
    assert not policy.should_flush(0, 10_000, 10.0)
    assert policy.should_flush(10, 0, 0.0)
    assert policy.should_flush(1, 100, 0.0)
    assert policy.should_flush(1, 0, 1.0)
    assert not policy.should_flush(9, 99, 0.5)


def _trades(rows: list[tuple[str, str, str, int]]) -> pa.RecordBatch:
    exchanges, symbols, ids, times = (list(c) for c in zip(*rows, strict=True))
    return pa.RecordBatch.from_pydict(
        {
            "exchange": exchanges,
            "symbol": symbols,
            "trade_id": ids,
            "event_time": pa.array(times, type=pa.timestamp("us", tz="UTC")),
        }
    )


def test_dedup_is_by_identity_loaded_from_the_table_per_partition() -> None:
    day = BASE_US // US_PER_DAY
    table = pa.Table.from_batches([_trades([("XASX", "BHP", "1", BASE_US)])])
    asked: list[dict[int, list[str]]] = []

    def loader(days: Any) -> pa.Table:
        asked.append({d: sorted(s) for d, s in days.items()})
        return table

    ids = TableIdentities(capacity=3, id_column="trade_id", loader=loader)
    batch = _trades(
        [
            ("XASX", "BHP", "1", BASE_US + 5),  # committed earlier (in the table)
            ("XASX", "BHP", "2", BASE_US + 5),
            ("XASX", "BHP", "2", BASE_US + 5),  # same identity twice in one batch
            ("XASX", "CBA", "1", BASE_US + 5),  # another symbol: not the same identity
            ("XASX", "BHP", "3", BASE_US + 5),  # content-identical to 4 below, distinct id
            ("XASX", "BHP", "4", BASE_US + 5),
        ]
    )
    assert ids.duplicates(batch) == [0, 2]
    assert asked == [{day: ["BHP", "CBA"]}]  # one pruned load for both partitions
    assert ids.duplicates(_trades([("XASX", "BHP", "4", BASE_US)])) == [0]
    assert len(asked) == 1  # cached
    ids.trim()  # over capacity, but every partition was touched by the open batch: kept
    assert len(asked) == 1 and ids.evicted == 0
    ids.clear()
    assert ids.duplicates(_trades([("XASX", "BHP", "1", BASE_US)])) == [0]
    assert len(asked) == 2  # reloaded from the table after clear()


def test_dedup_stays_exact_past_its_capacity() -> None:
    """Issue 13: a replay of anything older than the window was written again. Partitions are
    forgotten whole (least recently used first) and read again from the table."""
    day = BASE_US // US_PER_DAY
    committed: list[pa.RecordBatch] = []
    asked: list[dict[int, list[str]]] = []

    def loader(days: Any) -> pa.Table:
        asked.append({d: sorted(s) for d, s in days.items()})
        wanted = {(d, s) for d, symbols in days.items() for s in symbols}
        rows = [
            r
            for b in committed
            for r in b.to_pylist()
            if (r["event_time"].timestamp() * 1_000_000 // US_PER_DAY, r["symbol"]) in wanted
        ]
        return (
            pa.Table.from_batches(
                [
                    _trades(
                        [
                            (
                                r["exchange"],
                                r["symbol"],
                                r["trade_id"],
                                int(r["event_time"].timestamp() * 1_000_000),
                            )
                            for r in rows
                        ]
                    )
                ]
            )
            if rows
            else pa.Table.from_batches([_trades([("X", "none", "0", 0)])]).slice(0, 0)
        )

    ids = TableIdentities(capacity=4, id_column="trade_id", loader=loader)
    symbols = ["BHP", "CBA", "RIO", "CSL"]
    for symbol in symbols:  # one batch per symbol, committed before the next
        batch = _trades([("XASX", symbol, str(n), BASE_US + n) for n in range(3)])
        assert ids.duplicates(batch) == []
        committed.append(batch)
        ids.seal()
        ids.trim()
        assert len(ids) <= 4 + 3  # capacity plus the open batch's partitions
    assert ids.evicted >= 2
    # The oldest symbols' partitions were forgotten whole: their replay is read from the table.
    for symbol in symbols:
        replay = _trades([("XASX", symbol, str(n), BASE_US + n) for n in range(3)])
        assert ids.duplicates(replay) == [0, 1, 2], symbol
        ids.seal()
        ids.trim()
    assert {s for a in asked for s in a[day]} == set(symbols)
    # A partition the open batch touched is never forgotten, even over capacity.
    fresh = _trades([("XASX", "NAB", str(n), BASE_US) for n in range(10)])
    assert ids.duplicates(fresh) == []
    ids.trim()
    assert ids.duplicates(_trades([("XASX", "NAB", "3", BASE_US)])) == [0]


class _Table:
    """A table's committed identities, scanned as the sink's loader would (per day, symbol)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, int]] = []
        self.scans = 0

    def commit(self, batch: pa.RecordBatch) -> None:
        d = batch.to_pydict()
        for ex, sym, tid, t in zip(
            d["exchange"], d["symbol"], d["trade_id"], d["event_time"], strict=True
        ):
            self.rows.append((ex, sym, tid, int(t.timestamp() * 1_000_000)))

    def load(self, days: Any) -> pa.Table:
        self.scans += 1
        wanted = {(d, s) for d, symbols in days.items() for s in symbols}
        rows = [r for r in self.rows if (r[3] // US_PER_DAY, r[1]) in wanted]
        empty = pa.Table.from_batches([_trades([("X", "none", "0", 0)])]).slice(0, 0)
        return pa.Table.from_batches([_trades(rows)]) if rows else empty


def test_dedup_holds_only_hashes_of_committed_identities_and_reads_keys_on_a_hit() -> None:
    table = _Table()
    ids = TableIdentities(capacity=1_000, id_column="trade_id", loader=table.load)
    batch = _trades([("XASX", "BHP", str(n), BASE_US + n) for n in range(50)])
    assert ids.duplicates(batch) == []
    assert ids.exact_keys == 50  # pending: the table does not have them yet
    table.commit(batch)
    ids.seal()
    ids.duplicates(_trades([("XASX", "CBA", "1", BASE_US)]))  # the next open batch
    ids.trim()  # the commit landed: BHP's keys are the table's now
    assert ids.exact_keys == 1 and len(ids) == 51
    scans = table.scans
    # A replay of BHP: its hashes hit, so its exact keys are read from the table, once.
    replay = _trades([("XASX", "BHP", str(n), BASE_US + n) for n in (3, 4, 60)])
    assert ids.duplicates(replay) == [0, 1]
    assert table.scans == scans + 1
    assert ids.duplicates(_trades([("XASX", "BHP", "5", BASE_US + 5)])) == [0]
    assert table.scans == scans + 1  # BHP is exact now, and stays so
    ids.seal()
    ids.trim()
    assert ids.exact_keys == 51  # BHP's 50 + "60"; CBA's pending key went with the commit


def test_a_hash_collision_never_drops_a_record() -> None:
    table = _Table()
    ids = TableIdentities(capacity=1_000, id_column="trade_id", loader=table.load)
    new = _trades([("XASX", "BHP", "7", BASE_US)])
    # Another identity with this record's hash is held (its key is not this one).
    ids._hashes.add(identity_frame(new, "trade_id").get_column("h").to_numpy())
    assert ids.duplicates(new) == []
    assert ids.duplicates(new) == [0]  # and now it is held itself


def test_dedup_window_zero_disables() -> None:
    ids = TableIdentities(capacity=0, id_column="trade_id", loader=lambda _d: pa.table({}))
    batch = _trades([("XASX", "BHP", "1", BASE_US)] * 2)
    assert ids.duplicates(batch) == []


def test_sequence_tracker_counts_gaps_and_out_of_order() -> None:
    tracker = SequenceTracker()
    report = tracker.observe(["X"] * 5, ["A", "A", "A", "B", "A"], [1, 2, 5, 9, 4])
    assert (report.gaps, report.out_of_order) == (1, 1)


def test_sequence_tracker_over_columns_equals_per_row() -> None:
    exchanges = ["X"] * 9
    symbols = ["A", "A", "A", "B", "A", "B", "B", "A", "A"]
    sequences = [1, 2, 5, 9, 4, 9, 12, 6, 8]
    expected = SequenceTracker().observe(exchanges, symbols, sequences)
    columns = SequenceTracker()
    batch = pa.RecordBatch.from_pydict(
        {"exchange": exchanges, "symbol": symbols, "venue_sequence": sequences}
    )
    half = 4
    first = columns.observe_batch(batch.slice(0, half))
    second = columns.observe_batch(batch.slice(half))
    assert (first.gaps + second.gaps, first.out_of_order + second.out_of_order) == (
        expected.gaps,
        expected.out_of_order,
    )


def test_sequence_tracker_over_columns_equals_per_row_on_random_batches() -> None:
    rng = random.Random(7)
    per_row, columns = SequenceTracker(), SequenceTracker()
    totals = [0, 0]
    for _batch in range(30):
        n = rng.randrange(1, 60)
        exchanges = [rng.choice("XY") for _ in range(n)]
        symbols = [rng.choice("ABCD") for _ in range(n)]
        sequences = [rng.randrange(0, 40) for _ in range(n)]
        expected = per_row.observe(exchanges, symbols, sequences)
        found = columns.observe_batch(
            pa.RecordBatch.from_pydict(
                {"exchange": exchanges, "symbol": symbols, "venue_sequence": sequences}
            )
        )
        assert (found.gaps, found.out_of_order) == (expected.gaps, expected.out_of_order)
        totals[0] += found.gaps
        totals[1] += found.out_of_order
    assert all(totals)  # the data exercised both counters


@pytest.mark.parametrize("fast", [False, True])
def test_decoder_routes_every_bad_kind_and_keeps_decimals_exact(fast: bool) -> None:
    good = [Msg(encode(trade(i)), i) for i in range(3)]
    v2 = Msg(encode(trade(3, buyer_broker_id="B"), version=2, schema_id=2), 3)
    bad = [
        Msg(b"\x01\x00\x00\x00\x01abc", 10),  # wrong magic byte
        Msg(b"\x00\x00", 11),  # shorter than the header
        Msg(None, 12),  # tombstone
        Msg(struct.pack(">bI", 0, 77) + b"xx", 13),  # unknown schema id
        Msg(encode(trade(1))[:-3], 14),  # truncated
        Msg(encode(trade(1)) + b"zz", 15),  # trailing garbage
        Msg(struct.pack(">bI", 0, 3) + b"\x00", 16),  # another topic's schema
    ]
    result = decoder(fast).decode([*good, v2, *bad])
    reasons = {d.message.offset(): d.reason for d in result.dead}
    assert reasons == {
        10: "bad_framing",
        11: "bad_framing",
        12: "empty_value",
        13: "unknown_schema_id",
        14: "truncated_body",
        15: "trailing_bytes",
        16: "wrong_schema",
    }
    rows = [r for c in result.chunks for r in c.batch.to_pylist()]
    assert [r["trade_id"] for r in rows] == ["T0", "T1", "T2", "T3"]
    assert rows[0]["price"] == Decimal("45.12345678")
    assert result.chunks[0].batch.schema.field("price").type == pa.decimal128(18, 8)
    assert rows[3]["buyer_broker_id"] == "B"


def test_validator_rejects_with_reasons() -> None:
    records = [
        trade(0),
        trade(1, price=Decimal(0)),
        trade(2, size=Decimal("-1")),
        trade(3, symbol=" "),
        trade(4, event_time=0),
        trade(5, trade_id=""),
    ]
    result = decoder().decode([Msg(encode(r), i) for i, r in enumerate(records)])
    validator = Validator.for_dataset("trades", 631_152_000_000_000, 86_400)
    found = {r.row: r.reason for r in validator.rejections(result.chunks[0].batch)}
    assert found == {
        1: "non_positive_price",
        2: "non_positive_size",
        3: "empty_symbol",
        4: "implausible_event_time",
        5: "empty_trade_id",
    }


def test_null_in_a_required_column_is_rejected_first() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "trade_id": ["A", "B", ""],
            "symbol": pa.array([None, "BHP", None], type=pa.string()),
        }
    )
    validator = Validator.for_dataset("trades", 631_152_000_000_000, 86_400)
    found = {r.row: r.reason for r in validator.rejections(batch, frozenset({"symbol"}))}
    assert found == {0: "null_in_required_field", 2: "null_in_required_field"}
    lacking = validator.rejections(batch, frozenset({"exchange"}))  # writer lacks the column
    assert {r.reason for r in lacking} == {"null_in_required_field"} and len(lacking) == 3


def test_dlq_budget_stops_when_ratio_exceeded() -> None:
    budget = DlqBudget(max_ratio=0.5, window=100, min_records=10)
    letter = DeadLetter(Msg(b"", 0), "bad_framing", "X", "")
    budget.record(10, [letter] * 5)
    with pytest.raises(DlqBudgetExceededError):
        budget.record(10, [letter] * 9)
    exempt = DlqBudget(max_ratio=0.1, window=100, min_records=1)
    exempt.record(10, [DeadLetter(Msg(b"", 0), "duplicate", "X", "")] * 10)


def test_batcher_tracks_offsets_of_kept_and_dead_records() -> None:
    batcher = Batcher(CommitPolicy(1000, 10**9, 60))
    batcher.assign(("k2.trades", 0), 5)
    messages = [Msg(encode(trade(i)), 5 + i) for i in range(4)]
    batcher.consumed(messages)
    batcher.add_dead([DeadLetter(messages[3], "r", "E", "")])
    pending = batcher.take()
    part = pending.partitions[("k2.trades", 0)]
    assert (part.start, part.end, part.consumed, part.dead_lettered) == (5, 9, 4, 1)
    batcher.consumed([Msg(encode(trade(9)), 9)])
    assert batcher.take().partitions[("k2.trades", 0)].start == 9


def test_align_fills_missing_columns_with_nulls() -> None:
    result = decoder().decode([Msg(encode(trade(0)), 0)])
    v1 = result.chunks[0].batch
    target = (
        decoder()
        .decode([Msg(encode(trade(1, buyer_broker_id="B"), version=2, schema_id=2), 1)])
        .chunks[0]
        .batch.schema
    )
    aligned = align(v1, target)
    assert aligned.schema.names == target.names
    assert aligned.column("buyer_broker_id").null_count == 1


def test_fast_decoder_isolates_a_bad_record_in_a_large_group() -> None:
    messages = [Msg(encode(trade(i)), i) for i in range(1_000)]
    messages[637] = Msg(encode(trade(637))[:-2], 637)  # truncated, same schema id
    result = decoder(fast=True).decode(messages)
    assert [(d.message.offset(), d.reason) for d in result.dead] == [(637, "truncated_body")]
    rows = [r for c in result.chunks for r in c.batch.column("trade_id").to_pylist()]
    assert rows == [f"T{i}" for i in range(1_000) if i != 637]
    assert len(result.chunks) > 2  # halved: the good halves stayed on the fast path
