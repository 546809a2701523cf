"""The README's Python example (docs/examples/notebook.py) runs against a real stack."""

from __future__ import annotations

import runpy
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from k2.bootstrap import bootstrap_stack
from k2.catalog import load_catalog
from k2.contracts.catalogue import load_catalogue
from k2.settings import CatalogPrincipal, Endpoints

from .replay.tables import append, asx_trades

# The example uses the default namespace, as a reader's would: only the run's own local stack
# (never a shared Docker stack's tables); no other local test uses that namespace.
pytestmark = [pytest.mark.integration, pytest.mark.local_stack]
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "notebook.py"


def test_the_notebook_example_runs(
    stack: Endpoints,
    stack_dir: Path,
    asx_data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    catalogue = load_catalogue()
    catalog = load_catalog(stack, CatalogPrincipal.ADMIN)  # creates and appends
    # The run's own stack is fresh: its default namespace holds nobody's data yet (and a
    # stack that does is never written to here).
    assert (catalogue.namespace,) not in catalog.list_namespaces(), (
        f"{stack_dir} already has a {catalogue.namespace!r} namespace: run on a fresh stack"
    )
    bootstrap_stack(catalogue, stack, catalog=catalog)
    table = catalog.load_table(catalogue.dataset("trades").table_identifier)
    day = [t for t in asx_trades(asx_data_dir, "BHP") if "-20140310-" in t["trade_id"]]
    half = len(day) // 2
    append(table, day[:half])
    append(table, day[half:])
    # As in a reader's notebook: no K2_* variables, the local stack found by its directory.
    for name in Endpoints.model_fields:
        monkeypatch.delenv(f"K2_{name.upper()}", raising=False)
    monkeypatch.setenv("K2_STACK_DIR", str(stack_dir))

    names = runpy.run_path(str(EXAMPLE), run_name="__main__")

    bars, trades, then = names["bars"], names["trades"], names["then"]
    assert isinstance(bars, pa.Table) and isinstance(trades, pl.DataFrame)
    assert sum(bars["trades"].to_pylist()) == len(day)
    assert trades.height > 0 and trades["price"].dtype == pl.Decimal(18, 8)
    assert then.num_rows == half  # the first snapshot held the first half of the day
    assert f"BHP trades on 10 March then: {half}" in capsys.readouterr().out
