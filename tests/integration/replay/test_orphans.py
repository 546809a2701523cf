"""Orphan files: `k2.orphans` deletes unreferenced files past the age guard, and nothing else."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from k2.contracts.catalogue import Catalogue
from k2.maintain import CompactionPolicy, compact, expire_snapshots, row_count
from k2.orphans import list_files, referenced_files, remove_orphan_files

from .tables import append, asx_trades

pytestmark = pytest.mark.integration

BATCH = 200


def _write(table: Table, name: str) -> str:
    """An uncommitted data file, as a worker leaves it between writing and committing."""
    path = f"{table.location()}/data/{name}-{uuid.uuid4().hex}.parquet"
    with table.io.new_output(path).create() as out:
        out.write(b"PAR1 not referenced by any snapshot PAR1")
    return path


def _modified(table: Table, path: str) -> datetime:
    (found,) = [f.modified for f in list_files(table) if f.path == path]
    return found


@pytest.fixture
def filled(iceberg: Catalog, prefixed: Catalogue, asx_data_dir: Path) -> Table:
    table = iceberg.load_table(prefixed.dataset("trades").table_identifier)
    rows = [t for t in asx_trades(asx_data_dir, "DVN")]
    for n, start in enumerate(range(0, len(rows), BATCH), start=1):
        append(table, rows[start : start + BATCH], {"k2.offset.trades.0": str(n)})
    return table


def test_an_old_orphan_goes_and_a_fresh_one_stays(filled: Table) -> None:
    old = _write(filled, "old")
    time.sleep(2.5)  # S3 keeps modification times to the second
    fresh = _write(filled, "fresh")
    old_at, fresh_at = _modified(filled, old), _modified(filled, fresh)
    assert old_at < fresh_at
    rows_before = row_count(filled)
    referenced_before = {f.path for f in list_files(filled)} - {old, fresh}

    # The guard falls between the two writes: `old` is past it, `fresh` could still be an
    # in-flight commit's file.
    now = datetime.now(UTC)
    guard = now - (old_at + (fresh_at - old_at) / 2)
    report = remove_orphan_files(filled, older_than=guard, now=now)

    assert report.orphans == (old,)
    assert report.kept_young == 1
    remaining = {f.path for f in list_files(filled)}
    assert old not in remaining
    assert fresh in remaining
    assert referenced_before <= remaining  # every referenced file is still there
    filled.refresh()
    assert filled.scan().to_arrow().num_rows == rows_before  # and the table reads whole


def test_dry_run_deletes_nothing(filled: Table) -> None:
    path = _write(filled, "dry")
    far_future = datetime.now(UTC) + timedelta(days=30)
    report = remove_orphan_files(filled, now=far_future, dry_run=True)
    assert report.orphans == (path,)
    assert path in {f.path for f in list_files(filled)}


def test_files_of_expired_snapshots_become_orphans_and_the_table_still_reads(
    filled: Table,
) -> None:
    rows = row_count(filled)
    assert compact(filled, CompactionPolicy(min_files=2)).rewritten_files > 0
    assert expire_snapshots(filled, older_than=timedelta(0), retain_last=1) > 0
    filled.refresh()
    referenced = referenced_files(filled)

    # Everything unreferenced counts as old four days from now: only the rewritten small files,
    # the expired snapshots' manifests and manifest lists may go.
    report = remove_orphan_files(filled, now=datetime.now(UTC) + timedelta(days=4))

    assert report.orphans
    assert not set(report.orphans) & referenced
    assert any("/data/" in p for p in report.orphans)  # the compacted-away small files
    filled.refresh()
    assert filled.scan().to_arrow().num_rows == rows  # nothing the table needs was deleted
    assert filled.properties["k2.offset.trades.0"]  # K2's bookkeeping untouched
    assert remove_orphan_files(filled, now=datetime.now(UTC) + timedelta(days=4)).orphans == ()
