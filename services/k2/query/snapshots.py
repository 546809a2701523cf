"""Resolve `--as-of` (a snapshot id or a point in time) to one Iceberg snapshot id."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from pyiceberg.table import Table

from k2.query.errors import InvalidTimeRangeError, UnknownSnapshotError
from k2.query.time_range import parse_instant


def resolve_as_of(table: Table, as_of: str | None, tz: ZoneInfo = ZoneInfo("UTC")) -> int | None:
    """The snapshot id to read: None for the current state.

    An all-digit value is a snapshot id and must exist in the table's metadata; anything
    else is an ISO-8601 time and selects the last snapshot committed at or before it.
    """
    if as_of is None:
        return None
    text = as_of.strip()
    if text.isdigit():
        snapshot_id = int(text)
        if table.snapshot_by_id(snapshot_id) is None:
            known = ", ".join(str(s.snapshot_id) for s in table.snapshots()[-5:]) or "none"
            raise UnknownSnapshotError(
                f"table {'.'.join(table.name())} has no snapshot {snapshot_id} (latest: {known})"
            )
        return snapshot_id
    try:
        instant = parse_instant(text, tz, name="as-of")
    except InvalidTimeRangeError as e:
        raise UnknownSnapshotError(f"--as-of {as_of!r} is neither a snapshot id nor a time") from e
    millis = int(instant.timestamp() * 1000)
    snapshot = table.snapshot_as_of_timestamp(millis)
    if snapshot is None:
        first = table.snapshots()[0].timestamp_ms if table.snapshots() else None
        since = datetime.fromtimestamp(first / 1000, UTC).isoformat() if first else "never"
        raise UnknownSnapshotError(
            f"table {'.'.join(table.name())} had no snapshot at {instant.isoformat()}"
            f" (first snapshot: {since})"
        )
    return int(snapshot.snapshot_id)
