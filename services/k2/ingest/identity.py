"""A worker's stable identity: the Kafka group instance id of its static membership.

A static member (`group.instance.id`) that restarts with the same id takes its partitions
back at once, with no rebalance; a dynamic one waits for the dead member's session to expire
(STACK.md: 20 kill -9 restarts 6-20 s apart, only 5 ever received partitions).

The id is `K2_INGEST_WORKER_ID` when set (a container or pod name, a systemd instance);
otherwise the host name plus the lowest free slot on this host. A slot is an exclusive
`flock` on a file held for the process's life: the kernel releases it when the process dies,
even by kill -9, so a restarted worker takes the same slot, hence the same id, while two
workers of one group on one host never share one (a shared id fences the older member).
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import IO

from k2.ingest.errors import IngestError

SLOT_DIR_ENV = "K2_INGEST_SLOT_DIR"
MAX_SLOTS = 256
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class WorkerIdentity:
    """The id and, when a slot was claimed, the lock that keeps it ours."""

    def __init__(self, instance_id: str, lock: IO[bytes] | None = None) -> None:
        self.instance_id = instance_id
        self._lock = lock

    def release(self) -> None:
        """Give the slot back (the process's exit does the same)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def slot_dir() -> Path:
    """Where slot locks live (`K2_INGEST_SLOT_DIR`, default under the temp dir)."""
    return Path(os.environ.get(SLOT_DIR_ENV) or Path(tempfile.gettempdir()) / "k2-ingest-slots")


def worker_identity(group_id: str, configured: str | None) -> WorkerIdentity:
    """`configured` when given, else `<host>-<slot>` with the lowest free slot of `group_id`."""
    if configured:
        return WorkerIdentity(configured)
    directory = slot_dir() / _UNSAFE.sub("_", group_id)
    directory.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    for slot in range(MAX_SLOTS):
        handle = (directory / f"{slot}.lock").open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return WorkerIdentity(f"{host}-{slot}", handle)
    raise IngestError(f"no free worker slot for group {group_id} in {directory}")
