"""k2.bench's CPU accounting finds the real stack's service pids and measures each tree."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from k2.bench.cpu import CpuMeter
from k2.bench.environment import StackUnderTest
from k2.settings import Endpoints

pytestmark = [pytest.mark.integration, pytest.mark.local_stack]


def test_every_service_has_a_pid_and_a_cpu_figure(stack: Endpoints, stack_dir: Path | None) -> None:
    if stack_dir is None:
        pytest.skip("a bring-your-own stack has no state directory to read pids from")
    pids = StackUnderTest(stack, stack_dir).service_pids()
    assert pids.note is None
    assert all(isinstance(pid, int) for pid in pids.pids.values()), pids.pids
    meter = CpuMeter(pids).start()
    time.sleep(0.3)
    cpu = meter.finish()
    for service in pids.pids:
        assert isinstance(cpu["cpu_s"][service], float), (service, cpu["cpu_s"])
    assert cpu["cores_busy"] is not None
