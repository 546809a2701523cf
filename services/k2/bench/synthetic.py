"""Synthetic, realistic trades and quotes for load tests and benchmarks.

Each stream keeps, per symbol, a random-walk mid price on a 0.5 cent tick and an increasing
venue sequence, so the validator, the sequence tracker and the dedup window see what a real
feed would give them. Identities (`trade_id`, `quote_id`) carry a run id: two runs never
collide in a table's dedup window.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

# ASX-listed names, so partitioning by symbol spreads over many keys as a real feed does.
SYMBOLS = [
    "BHP",
    "CBA",
    "CSL",
    "NAB",
    "WBC",
    "ANZ",
    "WES",
    "MQG",
    "FMG",
    "WDS",
    "TLS",
    "RIO",
    "GMG",
    "TCL",
    "WOW",
    "ALL",
    "REA",
    "STO",
    "COL",
    "QBE",
    "JHX",
    "SUN",
    "NST",
    "XRO",
    "WTC",
    "CPU",
    "ORG",
    "RMD",
    "S32",
    "BXB",
    "IAG",
    "AMC",
    "MIN",
    "PLS",
    "SHL",
    "ASX",
    "QAN",
    "TWE",
    "EVN",
    "LYC",
]
TICK = Decimal("0.005")
EXCHANGE = "XASX"
CURRENCY = "AUD"
SIDES = ("BUY", "SELL", "UNKNOWN")
CONDITIONS = ((), ("XT",), ("qualifier:1",), ("XT", "venue:X"))


def now_us() -> int:
    """Wall-clock UTC microseconds since the epoch."""
    return time.time_ns() // 1_000


@dataclass
class _Book:
    mid_ticks: int
    sequence: int = 0


@dataclass
class MarketGenerator:
    """Endless trades and quotes over `SYMBOLS` (seeded: the same seed gives the same stream)."""

    run_id: str
    seed: int = 7
    schema_version: int = 2
    _random: random.Random = field(init=False, repr=False)
    _books: dict[str, _Book] = field(init=False, repr=False)
    _count: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311  # synthetic data, not secrets
        self._books = {s: _Book(self._random.randint(400, 40_000)) for s in SYMBOLS}

    def _step(self) -> tuple[str, _Book, int]:
        symbol = self._random.choice(SYMBOLS)
        book = self._books[symbol]
        book.mid_ticks = max(1, book.mid_ticks + self._random.randint(-2, 2))
        book.sequence += 1
        self._count += 1
        return symbol, book, self._count

    def trade(self, event_time_us: int | None = None) -> dict[str, Any]:
        """The next trade (event time now unless given)."""
        symbol, book, n = self._step()
        event = now_us() if event_time_us is None else event_time_us
        record: dict[str, Any] = {
            "trade_id": f"{self.run_id}-T{n}",
            "exchange": EXCHANGE,
            "symbol": symbol,
            "instrument_id": None,
            "venue_sequence": book.sequence,
            "event_time": event,
            "event_time_nanos": event * 1_000 + self._random.randint(0, 999),
            "receive_time": event + self._random.randint(50, 900),
            "price": TICK * book.mid_ticks,
            "size": Decimal(self._random.choice((1, 10, 50, 100, 250, 500, 1_000, 5_000))),
            "currency": CURRENCY,
            "side": self._random.choice(SIDES),
            "conditions": list(self._random.choice(CONDITIONS)),
        }
        if self.schema_version >= 2:
            record["buyer_broker_id"] = f"{self._random.randint(1, 99):03d}"
            record["seller_broker_id"] = f"{self._random.randint(1, 99):03d}"
            record["settlement_date"] = date.fromtimestamp(event / 1e6 + 2 * 86_400)
        return record

    def quote(self, event_time_us: int | None = None) -> dict[str, Any]:
        """The next top-of-book update; one side is sometimes empty, as in a real book."""
        symbol, book, n = self._step()
        event = now_us() if event_time_us is None else event_time_us
        spread = self._random.randint(1, 4)
        empty = self._random.random()
        record: dict[str, Any] = {
            "quote_id": f"{self.run_id}-Q{n}",
            "exchange": EXCHANGE,
            "symbol": symbol,
            "instrument_id": None,
            "venue_sequence": book.sequence,
            "event_time": event,
            "event_time_nanos": None,
            "receive_time": event + self._random.randint(50, 900),
            "bid_price": None if empty < 0.01 else TICK * book.mid_ticks,
            "bid_size": None if empty < 0.01 else Decimal(self._random.randint(1, 90) * 100),
            "ask_price": None if 0.01 <= empty < 0.02 else TICK * (book.mid_ticks + spread),
            "ask_size": None
            if 0.01 <= empty < 0.02
            else Decimal(self._random.randint(1, 90) * 100),
            "currency": CURRENCY,
        }
        if self.schema_version >= 2:
            record["bid_order_count"] = self._random.randint(1, 40)
            record["ask_order_count"] = self._random.randint(1, 40)
        return record

    def trades(self, count: int) -> Iterator[dict[str, Any]]:
        """`count` trades."""
        for _ in range(count):
            yield self.trade()
