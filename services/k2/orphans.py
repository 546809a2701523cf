"""Orphan files: objects under a table's location that no metadata references.

They come from writes that never committed (a worker killed between writing a data file and
committing it, a compaction that lost its race: `k2.maintain` deletes its own leftovers, a
crash cannot) and from expired snapshots (expiry does not delete data files here).

The invariant: a file is deleted only when it is (a) not referenced by the current metadata
file, any metadata file in its log, any snapshot's manifest list, any manifest of any snapshot
or any data/delete/statistics file in them, and (b) older than `older_than` (default 3 days,
Iceberg's own default). (b) is what makes it safe while ingest runs: a worker writes its data
files and manifests *before* the commit that references them, so a fresh unreferenced file may
be an in-flight commit's; no commit takes days. The listing is taken before the references
are read, so a commit landing in between is seen as referencing its files.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pyiceberg.table import Table

from k2.errors import K2Error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

DEFAULT_ORPHAN_AGE: Final = timedelta(days=3)


class OrphanCleanupError(K2Error):
    """The table's location could not be listed or an orphan could not be deleted."""


@dataclass(frozen=True)
class StoredFile:
    """One object under a table's location."""

    path: str
    modified: datetime


@dataclass(frozen=True)
class OrphanReport:
    """What an orphan pass found and did."""

    table: str
    listed: int
    orphans: tuple[str, ...]
    kept_young: int
    dry_run: bool


def _s3_client(table: Table) -> S3Client:
    # The table's own FileIO properties (from K2's catalog config): same endpoint and keys.
    props = table.io.properties
    client: S3Client = boto3.client(
        "s3",
        endpoint_url=props.get("s3.endpoint"),
        aws_access_key_id=props.get("s3.access-key-id"),
        aws_secret_access_key=props.get("s3.secret-access-key"),
        region_name=props.get("s3.region"),
    )
    return client


def list_files(table: Table) -> Iterator[StoredFile]:
    """Every object under the table's location (`s3://bucket/prefix/`)."""
    location = urlsplit(table.location())
    bucket = location.netloc
    # The trailing slash keeps a sibling table (`trades` vs `trades_v2`) out of the listing.
    prefix = location.path.strip("/") + "/"
    client = _s3_client(table)
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith("/"):
                    # A directory marker (SeaweedFS lists emptied directories this way): not a
                    # file, and deleting it through FileIO fails.
                    continue
                yield StoredFile(f"{location.scheme}://{bucket}/{obj['Key']}", obj["LastModified"])
    except (BotoCoreError, ClientError) as e:
        raise OrphanCleanupError(f"listing {table.location()} failed: {e}") from e


def referenced_files(table: Table) -> set[str]:
    """Every file the table's metadata references, across all snapshots (not just the current)."""
    metadata = table.metadata
    refs = {table.metadata_location, *(entry.metadata_file for entry in metadata.metadata_log)}
    refs |= {s.statistics_path for s in metadata.statistics}
    refs |= {s.statistics_path for s in metadata.partition_statistics}
    seen_manifests: set[str] = set()
    for snapshot in metadata.snapshots:
        refs.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            if manifest.manifest_path in seen_manifests:
                continue
            seen_manifests.add(manifest.manifest_path)
            # Live entries only: a DELETED entry records a file's removal in this snapshot; if
            # an older snapshot still needs that file, that snapshot's manifests list it live.
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                refs.add(entry.data_file.file_path)
    return refs | seen_manifests


def remove_orphan_files(
    table: Table,
    *,
    older_than: timedelta = DEFAULT_ORPHAN_AGE,
    now: datetime | None = None,
    dry_run: bool = False,
) -> OrphanReport:
    """Delete (or, with `dry_run`, only report) the table's orphan files older than
    `older_than`. See the module docstring for why this is safe during ingest."""
    cutoff = (now or datetime.now(UTC)) - older_than
    listed = list(list_files(table))  # before the references: see the module docstring
    table.refresh()
    refs = referenced_files(table)
    unreferenced = [f for f in listed if f.path not in refs]
    orphans = tuple(sorted(f.path for f in unreferenced if f.modified < cutoff))
    if not dry_run:
        for path in orphans:
            try:
                table.io.delete(path)
            except OSError as e:
                raise OrphanCleanupError(f"deleting orphan {path} failed: {e}") from e
            log.info("deleted orphan file %s", path)
    return OrphanReport(
        table=".".join(table.name()),
        listed=len(listed),
        orphans=orphans,
        kept_young=len(unreferenced) - len(orphans),
        dry_run=dry_run,
    )


__all__ = [
    "DEFAULT_ORPHAN_AGE",
    "OrphanCleanupError",
    "OrphanReport",
    "referenced_files",
    "remove_orphan_files",
]
