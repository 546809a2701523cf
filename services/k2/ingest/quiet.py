"""Keep a native library's panic report out of the worker's stderr (its JSON log stream).

polars' Avro reader panics on some malformed blocks (STACK.md); Rust prints the panic and, with
RUST_BACKTRACE set, a backtrace of ~20 lines straight to file descriptor 2, where the worker's
JSON log lines go. The fast path catches the panic and falls back to per-record decoding, which
dead-letters the bad record with its reason, so the report is noise. Around the native call
file descriptor 2 points at a spool file; afterwards whatever landed there is written back, all
of it when nothing panicked (other threads' lines are delayed by the call, never lost), and
only the structured lines (JSON logs, librdkafka's `%` lines) when the reader panicked.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

_LOCK = threading.Lock()
_STRUCTURED = (b"{", b"%")


@dataclass
class NativeCall:
    """Set `panicked` when the call ended in a panic: its report is then dropped."""

    panicked: bool = False


def _structured(spooled: bytes) -> bytes:
    lines = spooled.splitlines(keepends=True)
    return b"".join(line for line in lines if line.startswith(_STRUCTURED))


@contextmanager
def quiet_native_stderr() -> Iterator[NativeCall]:
    """Spool file descriptor 2 for the duration of a native call (one call at a time)."""
    with _LOCK, tempfile.TemporaryFile() as spool:
        sys.stderr.flush()
        saved = os.dup(2)
        call = NativeCall()
        os.dup2(spool.fileno(), 2)
        try:
            yield call
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            spool.seek(0)
            spooled = spool.read()
            kept = _structured(spooled) if call.panicked else spooled
            if kept:
                os.write(2, kept)
