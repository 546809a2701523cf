"""`k2 ingest run` sizes polars' thread pool before polars loads (a user's setting wins)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import sys
import k2.cli.ingest as ingest
assert "polars" not in sys.modules, "importing the ingest command loaded polars"
ingest.limit_polars_threads()
import polars
print(polars.thread_pool_size())
"""


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("2", "2")])
def test_worker_polars_pool(given: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "POLARS_MAX_THREADS"}
    if given is not None:
        env["POLARS_MAX_THREADS"] = given
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == expected
