"""Malformed input stays quiet: a polars reader panic leaves no report on stderr, and what
other code writes to stderr meanwhile is kept."""

from __future__ import annotations

import os
import subprocess
import sys

# Corrupt blocks until the native reader has panicked at least once (it does on some enum
# and length bytes), in a child process so that its file descriptor 2 is ours to read.
CHILD = """
import os, random, sys
import pyarrow as pa
from k2.bench.encoding import trade_bodies
from k2.contracts.schemas import load_schema
from k2.ingest import quiet
from k2.ingest.fastpath import decode_array
from k2.ingest.schemas import StaticSchemaSource, WriterSchemas

schema = load_schema("trade", 2)
writer = WriterSchemas(StaticSchemaSource({1: schema.text}), schema.full_name).get(1)
bodies = [b for _, b in trade_bodies("q", 50)]
rng = random.Random(3)
panics = 0
original = quiet.quiet_native_stderr
class Counting:
    def __init__(self):
        self.inner = original()
    def __enter__(self):
        self.call = self.inner.__enter__()
        os.write(2, b'{"message": "a log line written meanwhile"}\\n')
        return self.call
    def __exit__(self, *exc):
        global panics
        panics += self.call.panicked
        return self.inner.__exit__(*exc)
import k2.ingest.fastpath as fastpath
fastpath.quiet_native_stderr = Counting
for _ in range(150):
    corrupt = list(bodies)
    i = rng.randrange(len(corrupt))
    body = bytearray(corrupt[i])
    for _ in range(3):
        body[rng.randrange(len(body))] = rng.randrange(256)
    corrupt[i] = bytes(body)
    decode_array(writer, pa.array(corrupt, type=pa.large_binary()))
print(panics)
"""


def test_a_reader_panic_leaves_no_report_on_stderr() -> None:
    env = {**os.environ, "RUST_BACKTRACE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) > 0  # the reader did panic
    assert "panicked" not in done.stderr and "backtrace" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 150 and set(lines) == {'{"message": "a log line written meanwhile"}'}
