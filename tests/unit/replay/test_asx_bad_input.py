"""Bad ASX input in small temp data sets: malformed rows, missing files, unknown companies."""

from __future__ import annotations

from pathlib import Path

import pytest

from k2.replay.asx import AsxDataError, AsxSource, Dataset, UnknownSymbolError
from k2.replay.asx_rows import parse_quote, parse_trade
from k2.replay.bad_rows import BadRowReport, MalformedRowError

COMPANY_INFO = (
    "company_id,symbol,company_name,ISIN,start_date,end_date\r\n"
    "7078,BHP,BHP BILLITON LTD,AU000000BHP4,05/07/2008,03/31/2014\r\n"
)
DIVIDENDS = "company id,declared date,ex_date,record_date,pay_date,net amount,gross amount,currency type\r\n"
GOOD_TRADE = "03/10/2014,10:00:00.001,36.5,100,0,,"
GOOD_QUOTE = "03/10/2014,10:00:00.001,36.5,36.52,100,200"


def make_dataset(
    root: Path, trades: list[str], quotes: list[str], company_info: str = COMPANY_INFO
) -> Path:
    (root / "reference-data").mkdir(parents=True)
    (root / "reference-data" / "company_info.csv").write_text(company_info, newline="")
    (root / "reference-data" / "dividends.csv").write_text(DIVIDENDS, newline="")
    for name, rows in (("trades", trades), ("quotes", quotes)):
        (root / name).mkdir()
        (root / name / "7078.csv").write_text("".join(r + "\r\n" for r in rows), newline="")
    return root


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("03/10/2014,10:00:00.001,36.5,100,0,", "expected 7 columns"),
        ("2014-03-10,10:00:00.001,36.5,100,0,,", "not MM/DD/YYYY"),
        ("02/30/2014,10:00:00.001,36.5,100,0,,", "day is out of range"),
        ("03/10/2014,10:00:00,36.5,100,0,,", "not HH:MM:SS.mmm"),
        ("03/10/2014,25:00:00.000,36.5,100,0,,", "hour must be"),
        ("03/10/2014,10:00:00.001,3.6e1,100,0,,", "not a plain non-negative decimal"),
        ("03/10/2014,10:00:00.001,-36.5,100,0,,", "not a plain non-negative decimal"),
        ("03/10/2014,10:00:00.001,NaN,100,0,,", "not a plain non-negative decimal"),
        ("03/10/2014,10:00:00.001,0.0,100,0,,", "price is zero"),
        ("03/10/2014,10:00:00.001,36.5,10.5,0,,", "not a non-negative integer"),
        ("03/10/2014,10:00:00.001,36.5,100,x,,", "not an integer code"),
        ("", "expected 7 columns"),
    ],
)
def test_malformed_trade_rows(row: str, reason: str) -> None:
    with pytest.raises(MalformedRowError, match=reason):
        parse_trade(row)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("03/10/2014,10:00:00.001,36.5,36.52,100", "expected 6 columns"),
        ("03/10/2014,10:00:00.001,36.5,0.0,100,5", "ask side has price"),
        ("03/10/2014,10:00:00.001,36.5,36.52,0,200", "bid side has price"),
    ],
)
def test_malformed_quote_rows(row: str, reason: str) -> None:
    with pytest.raises(MalformedRowError, match=reason):
        parse_quote(row)


def test_bid_side_can_be_empty_too() -> None:
    quote = parse_quote("03/10/2014,10:00:00.001,0.0,36.52,0,200")
    assert quote.bid_price is None and quote.bid_size is None
    assert quote.ask_price is not None


def test_malformed_rows_reported_with_file_and_line(tmp_path: Path) -> None:
    root = make_dataset(
        tmp_path,
        trades=[GOOD_TRADE, "03/10/2014,10:00:01.000,abc,100,0,,", GOOD_TRADE, "garbage"],
        quotes=[GOOD_QUOTE],
    )
    source = AsxSource(root)
    bad = BadRowReport()
    (trades_file,) = source.market_files(Dataset.TRADES)
    trades = list(source.trades(trades_file, bad))
    # Good rows keep their positional identity; bad rows keep their place in the numbering.
    assert [t["trade_id"] for t in trades] == ["XASX-BHP-20140310-1", "XASX-BHP-20140310-3"]
    assert [t["venue_sequence"] for t in trades] == [1, 3]
    assert bad.count == 2
    assert [(r.file, r.line) for r in bad.rows] == [(trades_file.path, 2), (trades_file.path, 4)]
    assert "price 'abc'" in bad.rows[0].reason
    assert str(bad.rows[1]).startswith(f"{trades_file.path}:4: expected 7 columns")
    assert bad.by_file() == {trades_file.path: 2}


def test_undecodable_bytes_are_a_bad_row_not_a_crash(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, trades=[GOOD_TRADE], quotes=[GOOD_QUOTE])
    path = root / "trades" / "7078.csv"
    path.write_bytes(path.read_bytes() + b"03/10/2014,10:00:00.001,3\xff.5,100,0,,\r\n")
    bad = BadRowReport()
    (trades_file,) = AsxSource(root).market_files(Dataset.TRADES)
    assert len(list(AsxSource(root).trades(trades_file, bad))) == 1
    assert [r.line for r in bad.rows] == [2]


def test_missing_market_file_is_a_clear_error(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, trades=[GOOD_TRADE], quotes=[GOOD_QUOTE])
    (root / "quotes" / "7078.csv").unlink()
    with pytest.raises(AsxDataError, match=r"missing file: .*quotes/7078\.csv \(BHP\)"):
        AsxSource(root).market_files(Dataset.QUOTES)


def test_missing_company_info_is_a_clear_error(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, trades=[GOOD_TRADE], quotes=[GOOD_QUOTE])
    (root / "reference-data" / "company_info.csv").unlink()
    with pytest.raises(AsxDataError, match=r"missing file: .*company_info\.csv"):
        AsxSource(root)


def test_missing_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AsxDataError, match="data directory not found"):
        AsxSource(tmp_path / "nope")


def test_unknown_company_in_market_files(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, trades=[GOOD_TRADE], quotes=[GOOD_QUOTE])
    (root / "trades" / "9999.csv").write_text(GOOD_TRADE + "\r\n")
    with pytest.raises(UnknownSymbolError, match=r"9999\.csv: company id '9999'"):
        AsxSource(root).market_files(Dataset.TRADES)


def test_unknown_company_in_dividends(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, trades=[GOOD_TRADE], quotes=[GOOD_QUOTE])
    (root / "reference-data" / "dividends.csv").write_text(
        DIVIDENDS + "1234,09/25/2013,03/03/2014,03/07/2014,03/26/2014,0.59,0.84,USD\r\n"
    )
    with pytest.raises(UnknownSymbolError, match=r"dividends\.csv:2: company id '1234'"):
        AsxSource(root).check_reference_data()


def test_malformed_company_row_is_refused(tmp_path: Path) -> None:
    root = make_dataset(
        tmp_path,
        trades=[GOOD_TRADE],
        quotes=[GOOD_QUOTE],
        company_info=COMPANY_INFO + "7181,DVN,DEVINE LTD,AU000000DVN6,13/45/2008,\r\n",
    )
    with pytest.raises(AsxDataError, match=r"company_info\.csv:3: malformed company row"):
        AsxSource(root)
