"""Query errors: all K2Errors, so the CLI reports them as one clear line."""

from k2.errors import K2Error


class QueryError(K2Error):
    """A query could not be answered as asked."""


class InvalidTimeRangeError(QueryError):
    """`--start`/`--end` are unparseable or `--start` is not before `--end`."""


class UnknownSnapshotError(QueryError):
    """`--as-of` names a snapshot id that does not exist, or a time before the first snapshot."""


class UnknownTableError(QueryError):
    """The table to query does not exist in the catalog."""
