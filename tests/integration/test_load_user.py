"""The Locust Kafka user against the real stack: events fire from acks and counts reconcile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from k2.bench.environment import bootstrapped
from k2.settings import Endpoints

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _records_in_kafka(stack: Endpoints, topic: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap_servers, "group.id": "t"})
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1]
            for p in range(partitions)
        )
    finally:
        consumer.close()


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
        topic = catalogue.dataset(name).topic
        assert _records_in_kafka(stack, topic.name, topic.partitions) == events[f"{name}.success"]
