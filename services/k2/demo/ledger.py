"""What one demo run published, and whether the tables hold exactly that: by identity.

A stack may already hold data (an earlier demo, `k2 generate`, another producer writing right
now), so whole-topic or whole-table counts prove nothing about this run. The run keeps a ledger
of the identities it published (exchange, symbol, and the dataset's identity column, as ingest
dedups them) and reconciles those alone:

- nothing lost: every identity it published is in the table;
- nothing duplicated: none of them is in the table more than once;
- every record consumed while it ran is accounted for: the table's `k2.count.*` properties
  moved by as many consumed records as written plus dead-lettered ones, and by at least as many
  as it published (other producers may add more, never fewer).

A rerun's records are already in the tables: they count as found (once), and ingest dead-letters
the replayed copies as duplicates.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from pyiceberg.expressions import In
from pyiceberg.table import Table

from k2.contracts.catalogue import load_catalogue
from k2.demo.progress import table_counts
from k2.replay.asx_replay import Sink

_KEY = ("exchange", "symbol")


@functools.cache
def _identity_column(dataset_name: str) -> str:
    """What identifies a record of the dataset within its (exchange, symbol): the catalogue's."""
    return load_catalogue().dataset(dataset_name).ingest_spec().identity


class RunLedger:
    """A `Sink` that forwards records and remembers the identity of each one published."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._identities: dict[str, list[tuple[object, object, object]]] = {}

    def publish(self, dataset_name: str, record: Mapping[str, Any]) -> None:
        """Publish through the wrapped sink, then remember the record's identity."""
        self._sink.publish(dataset_name, record)
        column = _identity_column(dataset_name)
        self._identities.setdefault(dataset_name, []).append(
            (record["exchange"], record["symbol"], record[column])
        )

    def published(self, dataset_name: str) -> int:
        return len(self._identities.get(dataset_name, []))

    def identities(self, dataset_name: str) -> pl.DataFrame:
        """This run's distinct identities of `dataset_name` (columns exchange, symbol, id)."""
        rows = self._identities.get(dataset_name, [])
        frame = pl.DataFrame(rows, schema=["exchange", "symbol", "id"], orient="row")
        return frame.unique()


@dataclass(frozen=True)
class RunOutcome:
    """One table against what this run published to it."""

    name: str
    published: int
    distinct: int
    found: int
    rows_found: int
    counts_before: Counter[str] = field(default_factory=Counter)
    counts_after: Counter[str] = field(default_factory=Counter)

    def delta(self, kind: str) -> int:
        """How far `k2.count.<kind>` moved during the run (consumed, written, dead_lettered)."""
        return self.counts_after[kind] - self.counts_before[kind]

    @property
    def missing(self) -> int:
        return self.distinct - self.found

    @property
    def duplicated(self) -> int:
        return self.rows_found - self.found

    @property
    def reconciled(self) -> bool:
        consumed = self.delta("consumed")
        return (
            self.missing == 0
            and self.duplicated == 0
            and consumed >= self.published
            and consumed == self.delta("written") + self.delta("dead_lettered")
        )


def find_identities(table: Table, identities: pl.DataFrame, id_column: str) -> tuple[int, int]:
    """(distinct identities found, rows holding them) of `identities` in `table`.

    Only the run's symbols are read (pushed down to Iceberg), and only the identity columns.
    """
    if identities.is_empty():
        return 0, 0
    symbols = sorted(identities["symbol"].unique().to_list())
    scanned = table.scan(
        row_filter=In(term="symbol", literals=symbols), selected_fields=(*_KEY, id_column)
    ).to_arrow()
    rows = pl.from_arrow(scanned)
    if not isinstance(rows, pl.DataFrame):
        raise TypeError("a table scan is a table")
    rows = rows.rename({id_column: "id"})
    # Inner join on the identity: every stored copy of one of our identities is one row.
    mine = rows.join(identities, on=[*_KEY, "id"], how="inner")
    return mine.unique().height, mine.height


def reconcile(
    table: Table, topic: str, dataset_name: str, ledger: RunLedger, before: Counter[str]
) -> RunOutcome:
    """`dataset_name`'s table against the ledger; `before` is `table_counts` at the run's start."""
    table.refresh()
    identities = ledger.identities(dataset_name)
    found, rows_found = find_identities(table, identities, _identity_column(dataset_name))
    return RunOutcome(
        name=dataset_name,
        published=ledger.published(dataset_name),
        distinct=identities.height,
        found=found,
        rows_found=rows_found,
        counts_before=before,
        counts_after=table_counts(table, topic),
    )
