"""Query errors: all K2Errors, so the CLI reports them as one clear line."""

from k2.errors import K2Error, NotFoundError, UsageError


class QueryError(K2Error):
    """A query could not be answered as asked."""


class InvalidTimeRangeError(QueryError, UsageError):
    """`--start`/`--end` are unparseable or `--start` is not before `--end`."""


class UnknownSnapshotError(QueryError, NotFoundError):
    """`--as-of` names a snapshot id that does not exist, or a time before the first snapshot."""


class UnknownTableError(QueryError, NotFoundError):
    """The table to query does not exist in the catalog."""


class NoRowsError(QueryError, NotFoundError):
    """A symbol has no rows in the window asked for (usually a mistyped symbol)."""


class UnknownColumnError(QueryError, UsageError):
    """`--columns` names a column the table does not have."""
