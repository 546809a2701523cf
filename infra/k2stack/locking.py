"""One machine-wide exclusive lock on a file: the one helper every K2 tool uses.

Builds, installs and engine starts may run from several processes at once (xdist workers, a
developer's shell beside CI); each takes the lock, and the second waits, then finds the first's
result.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created, with its parents, if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
