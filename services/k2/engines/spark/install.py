"""Spark's Iceberg jars, fetched once from Maven Central into K2's cache.

The pom beside this module (`jars.xml`) names them; `maven_classpath` resolves it into
`~/.cache/k2/maven/spark-iceberg-<hash of the pom>/` and marks the directory complete only after
a good fetch, so a second call does nothing and a changed pom fetches anew. Nothing is committed.
"""

from __future__ import annotations

from pathlib import Path

from k2stack.local.context import default_cache_dir
from k2stack.local.install import maven_classpath

POM = Path(__file__).with_name("jars.xml")


def spark_jars(cache_dir: Path | None = None) -> list[Path]:
    """The jars Spark loads for K2's tables (downloaded on first use), sorted by name."""
    target = maven_classpath(cache_dir or default_cache_dir(), "spark-iceberg", POM)
    return sorted(target.glob("*.jar"))
