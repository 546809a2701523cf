"""`k2 query` on a real stack: a reader's table, and every user error as one line + exit code."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from click.testing import Result
from pyiceberg.catalog import Catalog
from typer.testing import CliRunner

from k2.cli.main import app
from k2.contracts.catalogue import Catalogue
from k2.settings import Endpoints

from .tables import append, asx_trades

pytestmark = pytest.mark.integration


@pytest.fixture
def bhp(iceberg: Catalog, prefixed: Catalogue, asx_data_dir: Path) -> int:
    """BHP's trades of 10 March 2014 in the prefixed table; returns the snapshot id."""
    table = iceberg.load_table(prefixed.dataset("trades").table_identifier)
    day = [t for t in asx_trades(asx_data_dir, "BHP") if "-20140310-" in t["trade_id"]]
    return append(table, day)


def _prefix(catalogue: Catalogue) -> str:
    return catalogue.namespace.removesuffix("market")


def _query(
    stack: Endpoints, catalogue: Catalogue, *args: str, env: dict[str, str] | None = None
) -> Result:
    base = [
        "query",
        "trades",
        "--symbol",
        "BHP",
        "--start",
        "2014-03-10T10:00",
        "--end",
        "2014-03-10T10:01",
        "--tz",
        "Australia/Sydney",
        "--prefix",
        _prefix(catalogue),
    ]
    return CliRunner().invoke(app, [*base, *args], env={**stack.as_env(), **(env or {})})


def _assert_error(result: Result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) <= 2, result.output
    assert lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in result.output


def test_the_issue_query_reads_well(stack: Endpoints, prefixed: Catalogue, bhp: int) -> None:
    result = _query(stack, prefixed)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "event_time (Australia/Sydney)" in lines[1]
    first = next(line for line in lines if "XASX-BHP-20140310-" in line).split()
    # Sydney time (not UTC), the price without padding zeros, one line per row.
    assert first[:5] == ["2014-03-10", "10:00:06.717", "BHP", "36.78", "358"]
    rows = [line for line in lines if "XASX-BHP-20140310-" in line]
    total = int(lines[-1].split()[0])  # "61 row(s)"
    assert total > 50
    assert len(rows) == 50  # the table shows 50, and says how to get the rest
    assert f"... {total - 50} more rows (use --format csv or parquet)" in result.output


def test_csv_keeps_every_column_and_columns_choose(
    stack: Endpoints, prefixed: Catalogue, bhp: int
) -> None:
    every = _query(stack, prefixed, "--format", "csv")
    chosen = _query(stack, prefixed, "--format", "csv", "--columns", "trade_id,price")

    assert every.exit_code == 0 and chosen.exit_code == 0, every.output + chosen.output
    table = pacsv.read_csv(
        pa.py_buffer(every.output.encode()),
        convert_options=pacsv.ConvertOptions(column_types={"price": pa.string()}),
    )
    assert len(table.column_names) == 16
    assert table["price"][0].as_py() == "36.78000000"  # the stored scale, exactly
    assert chosen.output.splitlines()[0] == '"trade_id","price"'


def test_a_mistyped_symbol_lists_the_known_ones(
    stack: Endpoints, prefixed: Catalogue, bhp: int
) -> None:
    result = _query(stack, prefixed, "--symbol", "BHPX")

    _assert_error(result, 4, "no trades of 'BHPX'", "symbols with trades then: BHP")


def test_an_unknown_column_lists_the_columns(
    stack: Endpoints, prefixed: Catalogue, bhp: int
) -> None:
    _assert_error(_query(stack, prefixed, "--columns", "prize"), 2, "no column 'prize'")


def test_an_unknown_snapshot_is_not_found(stack: Endpoints, prefixed: Catalogue, bhp: int) -> None:
    _assert_error(_query(stack, prefixed, "--as-of", "123"), 4, "has no snapshot 123")


def test_an_unknown_table_is_not_found(stack: Endpoints, unique: str) -> None:
    result = CliRunner().invoke(
        app,
        ["query", "ohlcv", "--symbol", "BHP", "--start", "2014-03-10", "--prefix", unique],
        env=stack.as_env(),
    )

    _assert_error(result, 4, f"no table {unique}market.trades")


def test_wrong_object_store_keys_are_refused_credentials(
    stack: Endpoints, prefixed: Catalogue, bhp: int
) -> None:
    result = _query(stack, prefixed, env={"K2_S3_SECRET_ACCESS_KEY": "not-the-secret"})

    _assert_error(result, 7, "the object store refused the credentials")


def test_a_wrong_registry_password_is_refused_credentials(stack: Endpoints, unique: str) -> None:
    url = re.sub(r"://([^:/@]+):[^@]+@", r"://\1:wrong@", stack.schema_registry_url)
    assert url != stack.schema_registry_url  # the stack's registry requires basic auth

    result = CliRunner().invoke(
        app,
        ["contracts", "register", "--prefix", unique],
        env={**stack.as_env(), "K2_SCHEMA_REGISTRY_URL": url},
    )

    _assert_error(result, 7, "401")


def test_a_wrong_catalog_credential_is_refused_credentials(
    stack: Endpoints, prefixed: Catalogue, bhp: int
) -> None:
    result = _query(stack, prefixed, env={"K2_ICEBERG_QUERY_CREDENTIAL": "k2-query:not-the-secret"})

    _assert_error(result, 7, "refused", "K2_ICEBERG_QUERY_CREDENTIAL")
