"""Synthetic market: deterministic, prices on the tick grid, trades inside their quote."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from k2.errors import ConfigError
from k2.generate import QUOTES, TRADES, GeneratorConfig, SyntheticMarket
from k2.replay.pacing import Pacer, RatePacer, parse_speed

FIXED = datetime(2026, 1, 1, tzinfo=UTC)


def _take(seed: int, count: int = 5000) -> list[tuple[str, dict[str, object]]]:
    market = SyntheticMarket(GeneratorConfig(symbols=20, seed=seed), clock=lambda: FIXED)
    return [(d, dict(r)) for d, r in market.take(count)]


def test_same_seed_same_data_other_seed_other_data() -> None:
    assert _take(7) == _take(7)
    assert _take(7) != _take(8)


def test_prices_on_tick_grid_and_trades_bracketed() -> None:
    tick = Decimal("0.01")
    last_quote: dict[object, dict[str, object]] = {}
    trades = 0
    for dataset, record in _take(3):
        if dataset == QUOTES:
            bid, ask = record["bid_price"], record["ask_price"]
            assert isinstance(bid, Decimal) and isinstance(ask, Decimal)
            assert bid % tick == 0 and ask % tick == 0 and bid < ask
            last_quote[record["symbol"]] = record
        else:
            assert dataset == TRADES
            trades += 1
            quote = last_quote[record["symbol"]]
            assert record["price"] in (quote["bid_price"], quote["ask_price"])
            assert record["event_time"] == quote["event_time"]
    assert trades > 1000
    ids = [r.get("trade_id", r.get("quote_id")) for _, r in _take(3)]
    assert len(set(ids)) == len(ids)


def test_symbols_and_sequences() -> None:
    records = _take(5)
    assert len({r["symbol"] for _, r in records}) == 20
    per_symbol: dict[object, list[int]] = {}
    for _, r in records:
        per_symbol.setdefault(r["symbol"], []).append(int(str(r["venue_sequence"])))
    for sequences in per_symbol.values():
        assert sequences == list(range(1, len(sequences) + 1))


def test_bad_config() -> None:
    with pytest.raises(ConfigError):
        GeneratorConfig(symbols=0)
    with pytest.raises(ConfigError):
        GeneratorConfig(tick=Decimal(0))


def test_speed_parsing_and_pacing() -> None:
    assert parse_speed("max") is None
    assert parse_speed("10") == 10.0
    assert parse_speed("2x") == 2.0
    with pytest.raises(ConfigError):
        parse_speed("fast")
    with pytest.raises(ConfigError):
        parse_speed("0")
    clock = [0.0]
    slept: list[float] = []
    pacer = Pacer(10.0, sleep=slept.append, monotonic=lambda: clock[0])
    pacer.wait_for(datetime(2014, 3, 10, 0, 0, 0, tzinfo=UTC))
    pacer.wait_for(datetime(2014, 3, 10, 0, 0, 10, tzinfo=UTC))  # 10 s of market at 10x
    assert slept == [1.0]
    rate = RatePacer(4.0, sleep=slept.append, monotonic=lambda: clock[0])
    for _ in range(3):
        rate.wait()
    assert slept[1:] == [0.25, 0.5]
