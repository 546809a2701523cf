"""K2 from Python, as in a notebook: the README's example, run by the test suite.

Needs a stack holding the ASX sample data (`./task demo` leaves one running); the stack is
found as every `k2` command finds it (K2_* variables, else the running local stack).
"""

import polars as pl

import k2.query

# Five-minute bars of BHP on 10 March 2014, buckets in Sydney time; prices are exact decimals.
bars = k2.query.ohlcv("BHP", "2014-03-10", interval="5m", tz="Australia/Sydney")
print(pl.from_arrow(bars).select("bar_start_local", "open", "high", "low", "close", "volume"))

# The trades of the opening minute, as a polars DataFrame (zero-copy from Arrow).
trades = pl.from_arrow(
    k2.query.trades("BHP", "2014-03-10T10:00", "2014-03-10T10:01", tz="Australia/Sydney")
)
print(trades.select("event_time", "price", "size", "trade_id"))

# Time travel: the same day as the table was after its first commit.
history = k2.query.snapshots("trades")
first = history["snapshot_id"][0].as_py()
then = k2.query.trades("BHP", "2014-03-10", tz="Australia/Sydney", as_of=first)
print(f"{len(history)} snapshots; BHP trades on 10 March then: {then.num_rows}")
