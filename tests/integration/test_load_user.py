"""The Locust Kafka user against the real stack: events fire from acks and counts reconcile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from k2.bench.environment import bootstrapped
from k2.demo.progress import end_offsets
from k2.settings import Endpoints

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_locust_user_reports_every_ack(stack: Endpoints, unique: str) -> None:
    catalogue = bootstrapped(stack, unique)
    # A child process: Locust patches the standard library with gevent when imported.
    env = {**os.environ, **stack.as_env(), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.probe", "--prefix", unique, "--seconds", "3"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    counts = json.loads(done.stdout.strip().splitlines()[-1])

    events = counts["events"]
    assert events.get("trades.success", 0) > 0
    assert events.get("quotes.success", 0) > 0
    assert counts["failed"] == counts["queue_full"] == 0
    assert counts["stats_failures"] == 0
    assert counts["produced"] == counts["acked"] == counts["stats_requests"]
    assert counts["acked"] == events["trades.success"] + events["quotes.success"]
    for name in ("trades", "quotes"):
        topic = catalogue.dataset(name).topic.name
        in_kafka = sum(end_offsets(stack.kafka_bootstrap_servers, topic).values())
        assert in_kafka == events[f"{name}.success"]
