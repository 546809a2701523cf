"""Query and maintenance engines for K2's tables.

`pyiceberg` (the default) runs in the K2 process itself: no JVM, fine for one machine's worth
of data. `spark` (`k2.engines.spark`, the optional `spark` extra) runs Iceberg's own Spark
procedures against a Spark master (`local[*]`, or a cluster's URL): the engine for years of
ticks. Both read and write the same tables through the same REST catalog.
"""

from __future__ import annotations

from enum import StrEnum


class Engine(StrEnum):
    """Which engine a `k2 maintain` / `k2 query` run uses."""

    PYICEBERG = "pyiceberg"
    SPARK = "spark"


__all__ = ["Engine"]
