"""Query K2's Iceberg tables: filtered scans with time travel, and OHLCV bars from trades.

`time_range` parses the user's window, `snapshots` resolves `--as-of`, `scan` pushes the
symbol and time filters into pyiceberg (so partitions and files are pruned), `ohlcv` builds
exact-decimal bars with Arrow compute and `output` writes tables, CSV or Parquet.
"""
