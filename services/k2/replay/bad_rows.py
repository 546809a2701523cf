"""Rows that could not be parsed: counted and kept with file and line, never dropped silently."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from k2.errors import K2Error


class MalformedRowError(K2Error):
    """One source row does not match its file's format (raised by the row parsers)."""


class BadRowsError(K2Error):
    """A replay found malformed rows and refused to publish anything (nothing partially written)."""

    def __init__(self, report: BadRowReport) -> None:
        lines = "\n".join(f"  {row}" for row in report.rows[: report.keep])
        more = report.count - len(report.rows[: report.keep])
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{report.count} malformed row(s); nothing was published:\n{lines}{tail}")
        self.report = report


@dataclass(frozen=True)
class BadRow:
    """Where a malformed row is and why it was refused."""

    file: Path
    line: int
    reason: str
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}: {self.text!r}"


@dataclass
class BadRowReport:
    """Every malformed row seen by a parse, in file order.

    `keep` only bounds what error messages print; `rows` keeps every bad row so the count and
    the listing always agree.
    """

    rows: list[BadRow] = field(default_factory=list)
    keep: int = 20

    def add(self, file: Path, line: int, reason: str, text: str) -> None:
        """Record one malformed row."""
        self.rows.append(BadRow(file=file, line=line, reason=reason, text=text))

    @property
    def count(self) -> int:
        """How many malformed rows were seen."""
        return len(self.rows)

    def by_file(self) -> dict[Path, int]:
        """Malformed row count per file."""
        counts: dict[Path, int] = {}
        for row in self.rows:
            counts[row.file] = counts.get(row.file, 0) + 1
        return counts
