"""k2.bench's CPU accounting (/proc) and py-spy summaries, without services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from k2.bench import pyspy
from k2.bench.cpu import UNKNOWN, CpuMeter, ServicePids, read_proc
from k2.bench.environment import StackUnderTest, local_state_dir
from k2.settings import Endpoints

# Burns `seconds` of CPU in a grandchild it waits for (so the time lands in its cutime, as a
# PostgreSQL backend's does in the postmaster's), says so, then idles until killed.
PARENT_OF_BURNER = """
import subprocess, sys, time
burn = "import time\\nwhile time.process_time() < {seconds}: pass"
subprocess.run([sys.executable, "-c", burn], check=True)
print("done", flush=True)
time.sleep(60)
"""


def _endpoints() -> Endpoints:
    return Endpoints(
        kafka_bootstrap_servers="127.0.0.1:1",
        schema_registry_url="http://127.0.0.1:2",
        iceberg_catalog_uri="http://127.0.0.1:3",
        s3_endpoint="http://127.0.0.1:4",
        s3_access_key_id="access",
        s3_secret_access_key=SecretStr("secret"),
        postgres_dsn=SecretStr("postgresql://k2:pw@127.0.0.1:5/db"),
        prometheus_url="http://127.0.0.1:6",
    )


def test_read_proc_of_this_process() -> None:
    me = read_proc(os.getpid())
    assert me is not None
    assert me.ppid == os.getppid()
    assert me.own >= 0
    assert read_proc(2**22 + 1) is None  # above the kernel's pid limit: never a process


def test_a_tracked_tree_counts_its_reaped_children() -> None:
    meter = CpuMeter(ServicePids({"postgres": None}, "a stack run elsewhere")).start()
    script = PARENT_OF_BURNER.format(seconds=0.3)
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as p:
        try:
            meter.track("workers", p.pid)
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "done"
            cpu = meter.finish()
        finally:
            p.kill()
    assert isinstance(cpu["cpu_s"]["workers"], float)
    assert cpu["cpu_s"]["workers"] >= 0.28  # the grandchild's 0.3 s, at tick resolution
    assert cpu["cpu_s"]["postgres"] == UNKNOWN
    assert list(cpu["cpu_s"])[-2:] == ["bench", "other"]
    assert cpu["stack_pids"] == {"pids": {"postgres": None}, "note": "a stack run elsewhere"}
    assert cpu["cores"] == os.cpu_count()
    assert cpu["wall_s"] > 0
    assert cpu["busy_s"] >= cpu["cpu_s"]["workers"] - 0.05


def test_a_root_gone_before_the_end_is_unknown() -> None:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as p:
        meter = CpuMeter(ServicePids({"kafka": p.pid})).start()
        p.wait()
    assert meter.finish()["cpu_s"]["kafka"] == UNKNOWN


def test_a_stack_run_elsewhere_has_unknown_pids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids = StackUnderTest(_endpoints(), None).service_pids()
    assert set(pids.pids) >= {"postgres", "kafka", "seaweedfs"}
    assert set(pids.pids.values()) == {None}
    assert pids.note is not None
    monkeypatch.setenv("K2_STACK_DIR", str(tmp_path))  # no manifest: no local stack there
    assert local_state_dir(_endpoints()) is None
    assert StackUnderTest(_endpoints(), tmp_path).service_pids().note is not None


RAW = """\
thread (11): MainThread;<module> (k2:8);run (/v/lib/python3.12/site-packages/k2/ingest/worker.py:10);consume (/v/lib/python3.12/site-packages/k2/ingest/source.py:5) 60
thread (11): MainThread;<module> (k2:8);run (/v/lib/python3.12/site-packages/k2/ingest/worker.py:12);decode (/v/lib/python3.12/site-packages/k2/ingest/decoder.py:7) 20
thread (11);<module> (k2:8);run (/v/lib/python3.12/site-packages/k2/ingest/worker.py:12);walk (t.py:1);walk (t.py:1) 10
thread (12): k2-commit_0;Thread.run (/usr/lib/python3.12/threading.py:982);commit (/v/lib/python3.12/site-packages/pyiceberg/table/__init__.py:9) 9
thread (13): prometheus;serve (x.py:1) 1
thread (14): ThreadPoolExecutor-0_0;Thread.run (/usr/lib/python3.12/threading.py:982);_worker (/usr/lib/python3.12/concurrent/futures/thread.py:81) 40
"""


def test_summarise_collapsed_stacks(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(RAW)
    summary = pyspy.summarise(raw)
    assert (summary["samples"], summary["busy_samples"]) == (140, 100)
    main, commit, small, idle = summary["threads"]
    assert (idle["thread"], idle["samples"], idle["waiting_samples"]) == (
        "ThreadPoolExecutor-0_0",
        0,
        40,
    )
    assert main["common_root"] == "run (k2/ingest/worker.py)"
    assert (main["thread"], main["tid"], main["samples"], main["share"]) == (
        "MainThread",
        "11",
        90,
        0.9,
    )
    assert main["top_own"][0].split() == ["66.7%", "60", "consume", "(k2/ingest/source.py)"]
    inclusive = {line.split(None, 2)[2]: int(line.split()[1]) for line in main["top_inclusive"]}
    assert "run (k2/ingest/worker.py)" not in inclusive  # on every stack: the common root
    assert inclusive["decode (k2/ingest/decoder.py)"] == 20
    assert inclusive["walk (t.py)"] == 10  # recursion counts once per sample
    assert commit["thread"] == "k2-commit_0"
    assert commit["top_own"][0].endswith("commit (pyiceberg/table/__init__.py)")
    assert small["share"] == 0.01
    assert "top_own" not in small


def test_function_of_keeps_the_module_path() -> None:
    frame = "decode (/x/.venv/lib/python3.11/site-packages/k2/ingest/decoder.py:41)"
    assert pyspy.function_of(frame) == "decode (k2/ingest/decoder.py)"
    assert pyspy.function_of("<module> (<frozen site>:616)") == "<module> (<frozen site>)"
    assert pyspy.function_of("odd") == "odd"


def test_sampler_reports_an_error_instead_of_raising(tmp_path: Path) -> None:
    if pyspy.executable() is None:
        pytest.skip("py-spy is not installed (dev extra)")
    sampler = pyspy.Sampler(2**22 + 1, tmp_path / "raw.txt")  # no such process
    assert sampler.stop() == ""
    assert sampler.error is not None
    assert sampler.error.startswith("py-spy exited with")
