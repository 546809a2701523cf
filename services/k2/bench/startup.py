"""(d) Stack start time: cold (fresh state directory) and warm (restart on the same state).

Downloads are cached in ~/.cache/k2 and not part of either figure: `cold` is initdb, Kafka
storage format, bucket and catalog creation plus every health probe; `warm` is the same
services restarting on existing data.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from k2stack.local.stack import LocalStack


def run() -> dict[str, Any]:
    """Seconds to a healthy stack, cold then warm (an extra stack, on free ports)."""
    state = Path(tempfile.mkdtemp(prefix="k2-bench-start-"))
    shutil.rmtree(state)  # a state directory that does not exist yet: truly fresh
    stack = LocalStack(state, ephemeral_ports=True, log=lambda _: None)
    try:
        started = time.monotonic()
        stack.up()
        cold = time.monotonic() - started
        stack.down()
        started = time.monotonic()
        stack.up()
        warm = time.monotonic() - started
    finally:
        stack.down(purge=True)
    return {"cold_s": round(cold, 2), "warm_s": round(warm, 2), "downloads_cached": True}
