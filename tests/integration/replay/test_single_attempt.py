"""K2's commits are single attempts without touching the table (k2.commits).

pyiceberg would rebase a stale writer's append onto the new head by itself; K2's writers must
see the conflict instead (the ingest sink re-checks offset ownership), while the table keeps
Iceberg's default retry for other engines (Spark's rewrite retries against ingest appends).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.table import Table

from k2.commits import RETRY_PROPERTY, single_attempt
from k2.contracts.catalogue import Catalogue
from k2.maintain import row_count

from .tables import asx_trades

pytestmark = pytest.mark.integration


def _rebasing_append(table: Table, rows: list[dict[str, object]]) -> None:
    """pyiceberg's own append: it retries a conflict as the table's properties say."""
    schema = schema_to_pyarrow(table.schema(), include_field_ids=False)
    table.append(pa.Table.from_pylist(rows, schema=schema))


def test_a_stale_k2_commit_fails_where_pyiceberg_would_rebase_it(
    iceberg: Catalog, prefixed: Catalogue, asx_data_dir: Path
) -> None:
    identifier = prefixed.dataset("trades").table_identifier
    rows = [dict(r) for r in asx_trades(asx_data_dir, "DVN")]
    first, stale_k2, stale_plain = (iceberg.load_table(identifier) for _ in range(3))
    assert RETRY_PROPERTY not in first.properties  # Iceberg's default: other engines retry

    _rebasing_append(single_attempt(first), rows[:10])

    # A K2 writer on an old head sees the conflict, and writes nothing...
    with pytest.raises(CommitFailedException):
        _rebasing_append(single_attempt(stale_k2), rows[10:20])
    # ...where plain pyiceberg on an old head rebases its append silently.
    _rebasing_append(stale_plain, rows[20:30])

    table = iceberg.load_table(identifier)
    assert row_count(table) == 20
    ids = set(table.scan(selected_fields=("trade_id",)).to_arrow()["trade_id"].to_pylist())
    assert ids == {r["trade_id"] for r in rows[:10] + rows[20:30]}
    assert RETRY_PROPERTY not in table.properties  # the override stayed in memory
