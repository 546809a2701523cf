"""Synthetic market data for load: many symbols, tick-grid random walks, quotes around trades.

Deterministic for a seed (prices, sizes, sides, event times and ids); only `receive_time`
comes from the clock. Each step moves one symbol's mid price by -1, 0 or +1 tick, publishes
its new best bid/ask (a spread of 1-3 ticks around the mid) and, with probability
`trade_ratio`, a trade at the bid or the ask, so every trade sits inside its latest quote.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from k2.errors import ConfigError
from k2.replay.records import QuoteRecord, TradeRecord

EXCHANGE = "XSYN"
CURRENCY = "USD"
TRADES = "trades"
QUOTES = "quotes"

Record = TradeRecord | QuoteRecord


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate."""

    symbols: int = 100
    seed: int = 1
    tick: Decimal = Decimal("0.01")
    trade_ratio: float = 0.5
    events_per_second: float = 1000.0
    """Market-time density of events (spacing of event_time), not the publish rate."""
    start: datetime = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)

    def __post_init__(self) -> None:
        if self.symbols < 1:
            raise ConfigError("symbols must be at least 1")
        if self.tick <= 0:
            raise ConfigError("tick must be positive")
        if not 0 <= self.trade_ratio <= 1:
            raise ConfigError("trade_ratio must be within [0, 1]")
        if self.events_per_second <= 0:
            raise ConfigError("events_per_second must be positive")


def symbol_name(index: int) -> str:
    """SYM0000, SYM0001, ... (stable for an index)."""
    return f"SYM{index:04d}"


@dataclass
class _Book:
    mid_ticks: int
    sequence: int = 0


@dataclass
class SyntheticMarket:
    """An endless, seeded stream of (dataset, record) pairs."""

    config: GeneratorConfig = field(default_factory=GeneratorConfig)
    clock: Callable[[], datetime] = _now

    def events(self) -> Iterator[tuple[str, Record]]:
        """Quotes and trades in event-time order."""
        config = self.config
        rng = random.Random(config.seed)  # noqa: S311 - reproducible test data, not crypto
        books = [_Book(mid_ticks=rng.randint(500, 50_000)) for _ in range(config.symbols)]
        step = timedelta(seconds=1 / config.events_per_second)
        tick = config.tick
        event_number = 0
        while True:
            index = rng.randrange(config.symbols)
            book = books[index]
            book.mid_ticks = max(book.mid_ticks + rng.choice((-1, 0, 1)), 4)
            half_spread = rng.randint(1, 3)
            bid = tick * (book.mid_ticks - half_spread)
            ask = tick * (book.mid_ticks + half_spread)
            event_time = config.start + step * event_number
            symbol = symbol_name(index)
            book.sequence += 1
            yield (
                QUOTES,
                QuoteRecord(
                    quote_id=f"{EXCHANGE}-{config.seed}-Q{event_number}",
                    exchange=EXCHANGE,
                    symbol=symbol,
                    instrument_id=None,
                    venue_sequence=book.sequence,
                    event_time=event_time,
                    event_time_nanos=None,
                    receive_time=self.clock(),
                    bid_price=bid,
                    bid_size=Decimal(rng.randint(1, 100) * 100),
                    ask_price=ask,
                    ask_size=Decimal(rng.randint(1, 100) * 100),
                    currency=CURRENCY,
                ),
            )
            if rng.random() < config.trade_ratio:
                buy = rng.random() < 0.5
                book.sequence += 1
                yield (
                    TRADES,
                    TradeRecord(
                        trade_id=f"{EXCHANGE}-{config.seed}-T{event_number}",
                        exchange=EXCHANGE,
                        symbol=symbol,
                        instrument_id=None,
                        venue_sequence=book.sequence,
                        event_time=event_time,
                        event_time_nanos=None,
                        receive_time=self.clock(),
                        price=ask if buy else bid,
                        size=Decimal(rng.randint(1, 50) * 10),
                        currency=CURRENCY,
                        side="BUY" if buy else "SELL",
                        conditions=[],
                    ),
                )
            event_number += 1

    def take(self, count: int) -> Iterator[tuple[str, Record]]:
        """The first `count` records (quotes and trades together)."""
        for produced, item in enumerate(self.events()):
            if produced >= count:
                return
            yield item
