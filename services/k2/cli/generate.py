"""`k2 generate`: synthetic trades and quotes for load, to Kafka or to Parquet files."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.progress import Progress

from k2.contracts.catalogue import load_catalogue
from k2.contracts.mapping import arrow_schema, iceberg_schema
from k2.contracts.schemas import latest_schema
from k2.discovery import find_endpoints
from k2.errors import UsageError
from k2.generate import QUOTES, TRADES, GeneratorConfig, Record, SyntheticMarket
from k2.replay.pacing import RatePacer
from k2.replay.producer import RecordPublisher

console = Console(stderr=True)


def _write_parquet(records: list[tuple[str, Record]], output: Path) -> Counter[str]:
    output.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    for dataset, schema_name in ((TRADES, "trade"), (QUOTES, "quote")):
        rows = [dict(r) for d, r in records if d == dataset]
        schema = arrow_schema(iceberg_schema(latest_schema(schema_name)), include_field_ids=False)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), output / f"{dataset}.parquet")
        counts[dataset] = len(rows)
    return counts


def generate(
    *,
    count: Annotated[int, typer.Option(help="Records to produce (quotes and trades).")] = 10_000,
    symbols: Annotated[int, typer.Option(help="Number of synthetic symbols.")] = 100,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = 1,
    rate: Annotated[float, typer.Option(help="Records per second to publish (0 = max).")] = 0,
    tick: Annotated[str, typer.Option(help="Price tick size.")] = "0.01",
    trade_ratio: Annotated[float, typer.Option(help="Probability of a trade per quote.")] = 0.5,
    output: Annotated[
        Path | None, typer.Option(help="Write trades/quotes Parquet here instead of Kafka.")
    ] = None,
    prefix: Annotated[str, typer.Option(help="Topic prefix (tests).")] = "",
) -> None:
    """Generate synthetic trades and quotes (tick-grid random walk, quotes bracket trades)."""
    try:
        tick_size = Decimal(tick)
    except ArithmeticError as e:
        raise UsageError(f"--tick {tick!r} is not a decimal number") from e
    market = SyntheticMarket(
        GeneratorConfig(symbols=symbols, seed=seed, tick=tick_size, trade_ratio=trade_ratio)
    )
    if output is not None:
        counts = _write_parquet(list(market.take(count)), output)
    else:
        counts = _publish(market, count, rate, prefix)
    console.print(f"trades: {counts[TRADES]:,}  quotes: {counts[QUOTES]:,}")


def _publish(market: SyntheticMarket, count: int, rate: float, prefix: str) -> Counter[str]:
    endpoints = find_endpoints(export=True)
    catalogue = load_catalogue()
    if prefix:
        catalogue = catalogue.with_prefix(prefix)
    pacer = RatePacer(rate)
    counts: Counter[str] = Counter()
    with (
        RecordPublisher(
            endpoints.kafka_bootstrap_servers, endpoints.schema_registry_url, catalogue
        ) as publisher,
        Progress(console=console) as bar,
    ):
        task = bar.add_task("publishing", total=count)
        for dataset, record in market.take(count):
            pacer.wait()
            publisher.publish(dataset, record)
            counts[dataset] += 1
            bar.advance(task)
        publisher.flush()
    return counts
