"""Replay the ASX data set: validate every selected file first, then publish.

Two passes on purpose: a malformed row is found before anything is sent, so a bad file never
leaves a half-published replay behind (unless the caller opts in with `allow_bad_rows`, and
then every bad row is still reported). Parsing is cheap (about 2 s for the whole data set).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from k2.replay.asx import AsxSource, Dataset, MarketFile
from k2.replay.asx_rows import SYDNEY
from k2.replay.bad_rows import BadRowReport, BadRowsError
from k2.replay.pacing import Pacer
from k2.replay.records import QuoteRecord, TradeRecord

Progress = Callable[[int], None]


class Sink(Protocol):
    """Where records go (the Kafka publisher; tests may collect them)."""

    def publish(self, dataset_name: str, record: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class FileCount:
    """Rows read from one source file."""

    dataset: Dataset
    path: Path
    symbol: str
    rows: int
    bad_rows: int


@dataclass
class ReplaySummary:
    """What a replay read and published: per file, per table, per symbol and local day."""

    files: list[FileCount] = field(default_factory=list)
    by_symbol_day: Counter[tuple[Dataset, str, date]] = field(default_factory=Counter)
    reference_data: int = 0
    dividends_checked: int = 0
    bad: BadRowReport = field(default_factory=BadRowReport)
    published: Counter[Dataset] = field(default_factory=Counter)

    def rows(self, dataset: Dataset) -> int:
        """Good rows of `dataset` in the source."""
        if dataset is Dataset.REFERENCE_DATA:
            return self.reference_data
        return sum(f.rows for f in self.files if f.dataset is dataset)

    @property
    def total(self) -> int:
        """Good rows over every selected dataset."""
        return sum(f.rows for f in self.files) + self.reference_data


def _market_records(
    source: AsxSource, market_file: MarketFile, bad: BadRowReport
) -> Iterator[TradeRecord] | Iterator[QuoteRecord]:
    if market_file.dataset is Dataset.TRADES:
        return source.trades(market_file, bad)
    return source.quotes(market_file, bad)


def validate(source: AsxSource, datasets: Iterable[Dataset]) -> ReplaySummary:
    """Parse every selected file without publishing: counts and bad rows."""
    summary = ReplaySummary()
    selected = list(datasets)
    if Dataset.REFERENCE_DATA in selected:
        summary.dividends_checked = source.check_reference_data()
        summary.reference_data = len(source.companies)
    for dataset in (Dataset.TRADES, Dataset.QUOTES):
        if dataset not in selected:
            continue
        for market_file in source.market_files(dataset):
            before = summary.bad.count
            rows = 0
            for record in _market_records(source, market_file, summary.bad):
                rows += 1
                local_day = record["event_time"].astimezone(SYDNEY).date()
                summary.by_symbol_day[(dataset, record["symbol"], local_day)] += 1
            summary.files.append(
                FileCount(
                    dataset,
                    market_file.path,
                    market_file.company.symbol,
                    rows,
                    summary.bad.count - before,
                )
            )
    return summary


def _timed(
    dataset: Dataset, records: Iterator[TradeRecord] | Iterator[QuoteRecord]
) -> Iterator[tuple[datetime, Dataset, Mapping[str, Any]]]:
    for record in records:
        yield record["event_time"], dataset, record


def publish(
    source: AsxSource,
    datasets: Iterable[Dataset],
    sink: Sink,
    *,
    pacer: Pacer | None = None,
    allow_bad_rows: bool = False,
    progress: Progress | None = None,
    validated: ReplaySummary | None = None,
) -> ReplaySummary:
    """Validate, then publish the selected datasets to `sink`.

    Reference data goes first (consumers may need instruments before their trades). Market
    records are merged across files in event-time order, so a paced replay interleaves
    symbols as the market did. Pass `validated` to reuse an earlier `validate` of the same
    selection (e.g. to size a progress bar) instead of parsing twice before publishing.
    """
    selected = list(datasets)
    summary = validated or validate(source, selected)
    if summary.bad.count and not allow_bad_rows:
        raise BadRowsError(summary.bad)
    pacer = pacer or Pacer(speed=None)
    advance = progress or (lambda _: None)
    if Dataset.REFERENCE_DATA in selected:
        for reference in source.reference_data():
            sink.publish(Dataset.REFERENCE_DATA.value, reference)
            summary.published[Dataset.REFERENCE_DATA] += 1
            advance(1)
    streams = [
        _timed(market_file.dataset, _market_records(source, market_file, BadRowReport()))
        for dataset in (Dataset.TRADES, Dataset.QUOTES)
        if dataset in selected
        for market_file in source.market_files(dataset)
    ]
    # heapq.merge keeps each file's order on ties, so per-symbol order survives the merge.
    for event_time, dataset, record in heapq.merge(*streams, key=lambda item: item[0]):
        pacer.wait_for(event_time)
        sink.publish(dataset.value, record)
        summary.published[dataset] += 1
        advance(1)
    return summary
