"""Parsing the real ASX sample files (../shared/data/asx, or $K2_DATA_DIR)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from k2.replay.asx import AsxSource, Dataset, MarketFile, default_data_dir
from k2.replay.bad_rows import BadRowReport
from k2.replay.records import QuoteRecord, TradeRecord

DATA_DIR = default_data_dir()
if not (DATA_DIR / "trades").is_dir():
    # The real data is part of the test suite: missing, these tests fail, never skip.
    pytest.fail(f"ASX data not found at {DATA_DIR}: set K2_DATA_DIR", pytrace=False)

# Row counts exactly as SOURCE.md lists them.
TRADE_ROWS = {"3153": 11, "7078": 91_631, "7181": 232, "7458": 108_671}
QUOTE_ROWS = {"3153": 60, "7078": 77_849, "7181": 549, "7458": 91_171}
FIXED_CLOCK = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def source() -> AsxSource:
    return AsxSource(DATA_DIR, clock=lambda: FIXED_CLOCK)


def _file(source: AsxSource, dataset: Dataset, company_id: str) -> MarketFile:
    return next(f for f in source.market_files(dataset) if f.company.company_id == company_id)


@pytest.fixture(scope="module")
def all_trades(source: AsxSource) -> dict[str, list[TradeRecord]]:
    bad = BadRowReport()
    out = {
        f.company.company_id: list(source.trades(f, bad))
        for f in source.market_files(Dataset.TRADES)
    }
    assert bad.count == 0
    return out


@pytest.fixture(scope="module")
def all_quotes(source: AsxSource) -> dict[str, list[QuoteRecord]]:
    bad = BadRowReport()
    out = {
        f.company.company_id: list(source.quotes(f, bad))
        for f in source.market_files(Dataset.QUOTES)
    }
    assert bad.count == 0
    return out


def test_companies_and_reference_data(source: AsxSource) -> None:
    assert {c.symbol: c.isin for c in source.companies.values()} == {
        "MWR": "AU000000MWR6",
        "BHP": "AU000000BHP4",
        "DVN": "AU000000DVN6",
        "RIO": "AU000000RIO1",
    }
    assert source.check_reference_data() == 2
    records = list(source.reference_data())
    assert len(records) == 4
    bhp = next(r for r in records if r["symbol"] == "BHP")
    assert bhp["vendor_id"] == "7078"
    assert bhp["valid_to"] is not None and bhp["valid_to"].isoformat() == "2014-03-31"
    # 05/07/2008 00:00 Sydney is AEST (UTC+10): 2008-05-06T14:00Z.
    assert bhp["event_time"] == datetime(2008, 5, 6, 14, 0, tzinfo=UTC)


def test_row_counts_match_source_md(
    all_trades: dict[str, list[TradeRecord]], all_quotes: dict[str, list[QuoteRecord]]
) -> None:
    assert {k: len(v) for k, v in all_trades.items()} == TRADE_ROWS
    assert {k: len(v) for k, v in all_quotes.items()} == QUOTE_ROWS


def test_trade_fields_and_dst(all_trades: dict[str, list[TradeRecord]]) -> None:
    first = all_trades["7078"][0]  # 03/10/2014,07:57:14.754,36.667,20000,3,X,
    assert first["trade_id"] == "XASX-BHP-20140310-1"
    assert first["exchange"] == "XASX"
    assert first["instrument_id"] == "AU000000BHP4"
    # AEDT (daylight saving) in March 2014: UTC+11, so the UTC date is the day before.
    assert first["event_time"] == datetime(2014, 3, 9, 20, 57, 14, 754_000, tzinfo=UTC)
    assert first["price"] == Decimal("36.667") and str(first["price"]) == "36.667"
    assert first["size"] == Decimal(20000)
    assert first["currency"] == "AUD"
    assert first["side"] == "UNKNOWN"
    assert first["conditions"] == ["qualifier:3", "venue:X"]
    mwr = all_trades["3153"][0]  # 03/10/2014,13:50:38.849,1.11,3667,0,,
    assert mwr["event_time"] == datetime(2014, 3, 10, 2, 50, 38, 849_000, tzinfo=UTC)
    assert mwr["conditions"] == ["qualifier:0"]


def test_venue_and_buyer_columns_are_kept(all_trades: dict[str, list[TradeRecord]]) -> None:
    rows = [t for trades in all_trades.values() for t in trades]
    venue_x = [t for t in rows if "venue:X" in t["conditions"]]
    assert len(venue_x) == 224
    assert {t["symbol"] for t in venue_x} == {"BHP", "RIO"}
    assert {c for t in venue_x for c in t["conditions"] if c.startswith("qualifier:")} <= {
        "qualifier:1",
        "qualifier:3",
        "qualifier:9",
    }
    assert sum(1 for t in rows if any(c.startswith("buyer_id:") for c in t["conditions"])) == 113


def test_quote_column_order_and_empty_sides(all_quotes: dict[str, list[QuoteRecord]]) -> None:
    bhp = all_quotes["7078"]
    # 03/10/2014,05:43:45.676,37.7,0.0,300,0 : the ask side is empty.
    assert (bhp[0]["bid_price"], bhp[0]["bid_size"]) == (Decimal("37.7"), Decimal(300))
    assert bhp[0]["ask_price"] is None and bhp[0]["ask_size"] is None
    # 03/10/2014,05:43:45.676,37.7,37.73,300,600 : Bid, Ask, BidVolume, AskVolume.
    second = bhp[1]
    assert (second["bid_price"], second["ask_price"]) == (Decimal("37.7"), Decimal("37.73"))
    assert (second["bid_size"], second["ask_size"]) == (Decimal(300), Decimal(600))
    rows = [q for quotes in all_quotes.values() for q in quotes]
    empty_ask = [q for q in rows if q["ask_price"] is None]
    assert len(empty_ask) == 20  # first row of each of 5 days for 4 companies
    assert {q["quote_id"].split("-")[2] for q in empty_ask} == {
        "20140310",
        "20140311",
        "20140312",
        "20140313",
        "20140314",
    }
    crossed = [
        q
        for q in rows
        if q["ask_price"] is not None
        and q["bid_price"] is not None
        and q["bid_price"] > q["ask_price"]
    ]
    assert crossed, "crossed auction quotes are real and must be kept"


def test_identity_unique_and_positional(
    all_trades: dict[str, list[TradeRecord]], all_quotes: dict[str, list[QuoteRecord]]
) -> None:
    trade_ids = [t["trade_id"] for trades in all_trades.values() for t in trades]
    assert len(set(trade_ids)) == len(trade_ids)
    quote_ids = [q["quote_id"] for quotes in all_quotes.values() for q in quotes]
    assert len(set(quote_ids)) == len(quote_ids)
    for trades in all_trades.values():
        seqs = {(t["symbol"], t["trade_id"].split("-")[2], t["venue_sequence"]) for t in trades}
        assert len(seqs) == len(trades)
    # venue_sequence is the file line: increasing by one per row across all days of a symbol.
    bhp = all_trades["7078"]
    per_day = Counter(t["trade_id"].split("-")[2] for t in bhp)
    assert per_day == {
        "20140310": 17000,
        "20140311": 21681,
        "20140312": 20283,
        "20140313": 16309,
        "20140314": 16358,
    }
    assert [t["venue_sequence"] for t in bhp] == list(range(1, len(bhp) + 1))
    assert all(t["trade_id"].endswith(f"-{t['venue_sequence']}") for t in bhp)


def test_content_identical_trades_are_all_kept(all_trades: dict[str, list[TradeRecord]]) -> None:
    rows = [t for trades in all_trades.values() for t in trades]
    content = Counter(
        (t["symbol"], t["event_time"], t["price"], t["size"], tuple(t["conditions"])) for t in rows
    )
    duplicates = sum(n - 1 for n in content.values() if n > 1)
    assert duplicates > 1000  # thousands of distinct trades look identical
    assert len(rows) == sum(TRADE_ROWS.values())


def test_replay_is_deterministic(source: AsxSource) -> None:
    first = list(source.trades(_file(source, Dataset.TRADES, "7181"), BadRowReport()))
    again = list(source.trades(_file(source, Dataset.TRADES, "7181"), BadRowReport()))
    assert first == again
    quotes = list(source.quotes(_file(source, Dataset.QUOTES, "7181"), BadRowReport()))
    assert quotes == list(source.quotes(_file(source, Dataset.QUOTES, "7181"), BadRowReport()))


def test_prices_are_exact_decimals(all_trades: dict[str, list[TradeRecord]]) -> None:
    raw = (DATA_DIR / "trades" / "7458.csv").read_text().splitlines()
    for record, line in zip(all_trades["7458"], raw, strict=True):
        assert str(record["price"]) == line.split(",")[2]


def test_data_dir_is_configurable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("K2_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
