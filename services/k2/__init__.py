"""K2: market data from Kafka into Apache Iceberg, exactly and durably."""

import os

__version__ = "0.1.0"

# Arrow's C++ code (the Parquet writer, compute kernels) allocates from a default pool chosen
# once, from this variable, when pyarrow loads; `pyarrow.set_memory_pool` does not reach it.
# Its default, mimalloc, kept ~140 MB of freed memory reserved in an ingest worker, whose peak
# RSS is a target (k2.ingest.memory). So: the system allocator, set before anything imports
# pyarrow (every K2 module is under this package). A user's own setting wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
# polars' bundled jemalloc: one arena and a 1 s dirty-page decay instead of 8 arenas keeping
# freed pages for 10 s (measured: ~20-40 MB less peak RSS per worker, same throughput).
os.environ.setdefault("_RJEM_MALLOC_CONF", "narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0")
