"""`k2 dlq inspect` / `k2 dlq replay` against the local stack, and the other datasets end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from k2.cli.main import app

from .conftest import BASE_US, Env, wait_for

pytestmark = pytest.mark.integration


def _cli(env: Env, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    for name, value in env.env_vars().items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, [*args, "--table", "trades", "--prefix", env.prefix])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_inspect_filters_and_replay_after_a_fix(
    env: Env, running: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = env.trade(1, event_time=BASE_US - 40 * 365 * 86_400 * 10**6)  # 1986: implausible
    env.produce([env.trade(0), old, env.trade(2, price=Decimal(0))], version=1, raw=[b"junk"])
    first = env.worker()
    running(first)
    wait_for(lambda: env.counts()["consumed"] >= 4)
    first.stop()

    letters = [
        json.loads(line) for line in _cli(env, monkeypatch, "dlq", "inspect", "--json").splitlines()
    ]
    assert sorted(x["reason"] for x in letters) == [
        "bad_framing",
        "implausible_event_time",
        "non_positive_price",
    ]
    assert {x["source_topic"] for x in letters} == {env.catalogue.dataset("trades").topic.name}
    only = _cli(env, monkeypatch, "dlq", "inspect", "--json", "--error-class", "ValidationError")
    assert len(only.splitlines()) == 2
    assert "3 dead letter(s)" in _cli(env, monkeypatch, "dlq", "inspect")

    dry = json.loads(
        _cli(env, monkeypatch, "dlq", "replay", "--reason", "implausible_event_time", "--dry-run")
    )
    assert dry == {"dry_run": True, "would_replay": 1, "by_reason": {"implausible_event_time": 1}}
    assert env.counts()["consumed"] == 4  # nothing was sent

    # The fix: this venue's history goes back further than the validator allowed.
    sent = json.loads(_cli(env, monkeypatch, "dlq", "replay", "--reason", "implausible_event_time"))
    assert sent["replayed"] == 1
    fixed = env.worker(min_event_time_us=0)
    running(fixed)
    wait_for(lambda: env.counts()["consumed"] >= 5)
    assert sorted(r["trade_id"] for r in env.rows()) == ["T0", "T1"]


def test_quotes_and_reference_data_end_to_end(env: Env, running: Callable) -> None:
    quotes = [
        {
            "quote_id": f"Q{n}",
            "exchange": "XASX",
            "symbol": "BHP",
            "instrument_id": None,
            "venue_sequence": n,
            "event_time": BASE_US + n,
            "event_time_nanos": None,
            "receive_time": BASE_US + n,
            "bid_price": Decimal("45.10000001"),
            "bid_size": Decimal(100 + n),
            "ask_price": None if n % 2 else Decimal("45.2"),
            "ask_size": Decimal(7),
            "currency": "AUD",
        }
        for n in range(200)
    ]
    reference = [
        {
            "exchange": "XASX",
            "symbol": symbol,
            "instrument_id": f"AU{symbol}",
            "vendor_id": None,
            "name": f"{symbol} Ltd",
            "currency": "AUD",
            "valid_from": 20_000,
            "valid_to": None,
            "event_time": BASE_US,
            "receive_time": BASE_US,
        }
        for symbol in ("BHP", "CBA", "RIO")
    ]
    env.produce(quotes, version=1, table="quotes")
    env.produce(reference, version=1, table="reference_data")
    running(env.worker("quotes"))
    running(env.worker("reference_data"))
    wait_for(lambda: env.counts("quotes")["consumed"] >= 200)
    wait_for(lambda: env.counts("reference_data")["consumed"] >= 3)
    rows = {r["quote_id"]: r for r in env.rows("quotes")}
    assert len(rows) == 200
    assert rows["Q3"]["bid_price"] == Decimal("45.10000001")
    assert rows["Q3"]["ask_price"] is None
    assert sorted(r["symbol"] for r in env.rows("reference_data")) == ["BHP", "CBA", "RIO"]
