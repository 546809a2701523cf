"""Keep the worker's native memory close to what it uses (peak RSS is a target: 512 MB).

Measured on a worker at full throughput: Python objects stay under a few MB and Arrow's live
allocations peak around 100 MB, yet RSS grew past 600 MB. The rest is allocator retention:
Arrow's default mimalloc pool keeps freed pages, and glibc gives every thread that mallocs
(librdkafka's, the Parquet writers', the committer) an arena of its own. So: Arrow allocates
through the system allocator, glibc is held to a couple of arenas, and after each commit the
freed heap is handed back (`malloc_trim`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

import pyarrow as pa

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
ARENAS = 2


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    # Only glibc has these two; elsewhere (musl, macOS) do nothing.
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def bound_native_memory() -> None:
    """Arrow on the system allocator; glibc limited to `ARENAS` arenas."""
    pa.set_memory_pool(pa.system_memory_pool())
    if _LIBC is not None:
        _LIBC.mallopt(_M_ARENA_MAX, ARENAS)
    log.debug("native memory bounded", extra={"k2": {"arenas": ARENAS}})


def release_free_memory() -> None:
    """Give freed heap pages back to the operating system (glibc only)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
