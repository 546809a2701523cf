"""Query K2's Iceberg tables from Python: `k2.query.trades`, `quotes`, `ohlcv` return Arrow.

    import polars as pl
    import k2.query

    bars = k2.query.ohlcv("BHP", "2014-03-10", interval="5m", tz="Australia/Sydney")
    trades = pl.from_arrow(k2.query.trades("BHP", "2014-03-10T10:00", "2014-03-10T10:05",
                                           tz="Australia/Sydney"))
    first = k2.query.snapshots("trades")["snapshot_id"][0].as_py()
    then = k2.query.trades("BHP", "2014-03-10", tz="Australia/Sydney", as_of=first)

Prices stay exact (Arrow decimal128, polars Decimal). `Reader` keeps one catalog connection
for many queries. The stack is found as `k2` commands find it (`k2.discovery`). A runnable
version of this example: `docs/examples/notebook.py` (executed by the test suite).

Inside: `time_range` parses the window, `snapshots` resolves `as_of`, `scan` pushes the symbol
and time filters into pyiceberg (partitions and files are pruned), `ohlcv` builds
exact-decimal bars with Arrow compute, `output` writes tables, CSV or Parquet, `chart` draws
bars as a PNG.
"""

from k2.query.api import Instant, Reader, ohlcv, quotes, snapshots, trades

__all__ = ["Instant", "Reader", "ohlcv", "quotes", "snapshots", "trades"]
