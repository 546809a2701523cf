"""The ASX sample data set: find its files, check its reference data, yield K2 records.

Identity comes from the source position, never from content, because thousands of distinct
trades share millisecond, price and size:

* `trade_id` / `quote_id` = ``XASX-{symbol}-{YYYYMMDD}-{line}`` where `line` is the 1-based
  line number within the symbol's file and the date is the exchange-local trading day;
* `venue_sequence` = that same file line number. The contract says the sequence increases
  per (exchange, symbol), and ingest counts gaps and regressions per (exchange, symbol), so
  it must not restart each day; each file holds one symbol in time order, so its line
  number is exactly such a sequence (a malformed row shows up as a one-number gap).

Replaying the same files therefore yields the same ids (the ingest side dedups on them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from k2.errors import K2Error
from k2.replay.asx_rows import (
    SYDNEY,
    parse_date,
    parse_quote,
    parse_trade,
)
from k2.replay.bad_rows import BadRowReport, MalformedRowError
from k2.replay.records import QuoteRecord, ReferenceDataRecord, TradeRecord

EXCHANGE = "XASX"
CURRENCY = "AUD"
DATA_DIR_ENV = "K2_DATA_DIR"
REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "asx"
"""`../shared/data/asx` relative to the repository root; data is never copied into the repo."""

COMPANY_INFO = Path("reference-data") / "company_info.csv"
DIVIDENDS = Path("reference-data") / "dividends.csv"
NO_RECORDS = "--- NO RECORDS TO REPORT ---"

Clock = Callable[[], datetime]
Row = TypeVar("Row")


class AsxDataError(K2Error):
    """The ASX data set is missing a file or is not shaped as SOURCE.md describes."""


class UnknownSymbolError(AsxDataError):
    """A file or row names a company id that company_info.csv does not list."""


class Dataset(StrEnum):
    """The record streams a replay can publish."""

    TRADES = "trades"
    QUOTES = "quotes"
    REFERENCE_DATA = "reference_data"


def default_data_dir() -> Path:
    """`$K2_DATA_DIR`, else `../shared/data/asx` next to the repository."""
    configured = os.environ.get(DATA_DIR_ENV)
    return Path(configured) if configured else DEFAULT_DATA_DIR


def utc_now() -> datetime:
    """The receive-time clock of a live replay."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Company:
    """One row of company_info.csv."""

    company_id: str
    symbol: str
    name: str
    isin: str
    start_date: date
    end_date: date | None


@dataclass(frozen=True)
class MarketFile:
    """One trades or quotes file and the company it belongs to."""

    dataset: Dataset
    path: Path
    company: Company


def _read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without CRLF/LF). Undecodable bytes surface as U+FFFD and
    then fail row validation, so one bad byte never hides a whole file."""
    try:
        handle = path.open(encoding="utf-8", errors="replace", newline="")
    except FileNotFoundError as e:
        raise AsxDataError(f"missing file: {path}") from e
    except OSError as e:
        raise AsxDataError(f"cannot read {path}: {e}") from e
    with handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip("\r\n")


def _parsed(
    path: Path, parse: Callable[[str], Row], bad: BadRowReport
) -> Iterator[tuple[int, Row]]:
    """(line number, parsed row) for every good line; malformed lines go to `bad`."""
    for number, text in _read_lines(path):
        try:
            yield number, parse(text)
        except MalformedRowError as e:
            bad.add(path, number, str(e), text)


def _header_rows(path: Path, header_start: str) -> Iterator[tuple[int, list[str]]]:
    """Rows of a reference file after its header (checked), skipping the no-records marker."""
    lines = _read_lines(path)
    first = next(lines, None)
    if first is None or not first[1].startswith(header_start):
        raise AsxDataError(f"{path}:1: expected a header starting {header_start!r}")
    for number, text in lines:
        if text.strip() == NO_RECORDS:
            continue
        yield number, text.split(",")


class AsxSource:
    """The files under one ASX data directory (see SOURCE.md there)."""

    def __init__(self, data_dir: Path, clock: Clock = utc_now) -> None:
        if not data_dir.is_dir():
            raise AsxDataError(f"data directory not found: {data_dir} (set {DATA_DIR_ENV})")
        self.data_dir = data_dir
        self.clock = clock
        self.companies = self._load_companies()

    def _load_companies(self) -> dict[str, Company]:
        path = self.data_dir / COMPANY_INFO
        companies: dict[str, Company] = {}
        for number, fields in _header_rows(path, "company_id,symbol"):
            try:
                company_id, symbol, name, isin, start, end = fields
                company = Company(
                    company_id=company_id,
                    symbol=symbol,
                    name=name,
                    isin=isin,
                    start_date=parse_date(start),
                    end_date=parse_date(end) if end else None,
                )
            except (ValueError, MalformedRowError) as e:
                # Reference data is small and everything else hangs off it: refuse outright.
                raise AsxDataError(f"{path}:{number}: malformed company row: {e}") from e
            if not company_id or not symbol or not isin:
                raise AsxDataError(f"{path}:{number}: company id, symbol and ISIN are required")
            if company_id in companies:
                raise AsxDataError(f"{path}:{number}: duplicate company id {company_id}")
            companies[company_id] = company
        if not companies:
            raise AsxDataError(f"{path}: no companies listed")
        return companies

    def company(self, company_id: str, where: str) -> Company:
        """The company with that vendor id, or a clear error naming where it was referenced."""
        try:
            return self.companies[company_id]
        except KeyError as e:
            raise UnknownSymbolError(
                f"{where}: company id {company_id!r} is not in {self.data_dir / COMPANY_INFO}"
            ) from e

    def check_reference_data(self) -> int:
        """Validate dividends.csv against company_info.csv; returns its row count.

        Dividends have no K2 contract yet, so they are checked but not published.
        """
        path = self.data_dir / DIVIDENDS
        rows = 0
        for number, fields in _header_rows(path, "company id"):
            self.company(fields[0], f"{path}:{number}")
            rows += 1
        return rows

    def market_files(self, dataset: Dataset) -> list[MarketFile]:
        """Every company's file of `dataset`: an unknown id or a missing file is an error."""
        if dataset is Dataset.REFERENCE_DATA:
            raise AsxDataError("reference data is not a market file set")
        folder = self.data_dir / dataset.value
        if not folder.is_dir():
            raise AsxDataError(f"missing directory: {folder}")
        for path in sorted(folder.glob("*.csv")):
            self.company(path.stem, str(path))
        files = []
        for company_id, company in sorted(self.companies.items()):
            path = folder / f"{company_id}.csv"
            if not path.is_file():
                raise AsxDataError(f"missing file: {path} ({company.symbol})")
            files.append(MarketFile(dataset, path, company))
        return files

    def trades(self, source: MarketFile, bad: BadRowReport) -> Iterator[TradeRecord]:
        """The file's trades in file order; malformed rows go to `bad`."""
        company = source.company
        for number, row in _parsed(source.path, parse_trade, bad):
            yield TradeRecord(
                trade_id=f"{EXCHANGE}-{company.symbol}-{row.local_date:%Y%m%d}-{number}",
                exchange=EXCHANGE,
                symbol=company.symbol,
                instrument_id=company.isin,
                venue_sequence=number,
                event_time=row.event_time,
                # The venue gives milliseconds, not nanoseconds: the schema asks for null.
                event_time_nanos=None,
                receive_time=self.clock(),
                price=row.price,
                size=row.size,
                currency=CURRENCY,
                side="UNKNOWN",
                conditions=row.conditions,
            )

    def quotes(self, source: MarketFile, bad: BadRowReport) -> Iterator[QuoteRecord]:
        """The file's best bid/ask updates in file order; malformed rows go to `bad`."""
        company = source.company
        for number, row in _parsed(source.path, parse_quote, bad):
            yield QuoteRecord(
                quote_id=f"{EXCHANGE}-{company.symbol}-{row.local_date:%Y%m%d}-{number}",
                exchange=EXCHANGE,
                symbol=company.symbol,
                instrument_id=company.isin,
                venue_sequence=number,
                event_time=row.event_time,
                event_time_nanos=None,
                receive_time=self.clock(),
                bid_price=row.bid_price,
                bid_size=row.bid_size,
                ask_price=row.ask_price,
                ask_size=row.ask_size,
                currency=CURRENCY,
            )

    def reference_data(self) -> Iterator[ReferenceDataRecord]:
        """One record per company; effective from local midnight of its start date."""
        for company in self.companies.values():
            effective = datetime.combine(company.start_date, time(0), tzinfo=SYDNEY)
            yield ReferenceDataRecord(
                exchange=EXCHANGE,
                symbol=company.symbol,
                instrument_id=company.isin,
                vendor_id=company.company_id,
                name=company.name,
                currency=CURRENCY,
                valid_from=company.start_date,
                valid_to=company.end_date,
                event_time=effective.astimezone(UTC),
                receive_time=self.clock(),
            )
