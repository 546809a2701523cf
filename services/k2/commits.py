"""K2's own commits are single attempts: each writer decides what a conflict means.

pyiceberg retries a failed commit by itself, re-applying the transaction's snapshot updates on
the refreshed table, as often as the table's `commit.retry.num-retries` says (default 4). That
rebase is wrong for K2's writers: the ingest sink must re-check that it still owns the offsets
it records (a fenced writer's rebased append would land), and compaction re-stages its rewrite
itself. K2 used to set that property to 0 on the table, which turned retries off for every
engine: Spark's rewrite, which Iceberg validates and may safely retry against concurrent
appends, then failed on each ingest commit. The choice now lives with the writer, not the
table: pyiceberg reads the count from the table's in-memory metadata at commit time
(`Transaction.commit_transaction`), and K2's writers see 0 there. Only the in-memory copy
changes; nothing is written to the catalog (tests/unit/test_commits.py pins the behaviour).
"""

from __future__ import annotations

from typing import Final

from pyiceberg.table import Table

RETRY_PROPERTY: Final = "commit.retry.num-retries"


def single_attempt(table: Table) -> Table:
    """`table`, its next commit made once (a conflict raises CommitFailedException).

    Call it after each refresh: a refresh loads the catalog's metadata again.
    """
    properties = table.metadata.properties
    if properties.get(RETRY_PROPERTY) != "0":
        table.metadata = table.metadata.model_copy(
            update={"properties": {**properties, RETRY_PROPERTY: "0"}}
        )
    return table
