"""Identity dedup survives restarts and replays: the table, not a worker's memory, remembers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from k2.ingest.dlq_admin import read_letters

from .conftest import BASE_US, Env, wait_for

pytestmark = pytest.mark.integration

N = 600


def _trades(env: Env) -> list[dict[str, object]]:
    records = [env.trade(n) for n in range(N - 100)]
    # Content-identical distinct trades (same time, price, size, symbol; new ids): all real.
    twin = {"event_time": BASE_US + 7, "venue_sequence": 7, "symbol": "BHP"}
    records += [env.trade(n, **twin) for n in range(N - 100, N)]
    return records


def test_a_second_replay_with_a_new_worker_adds_nothing(env: Env, running: Callable) -> None:
    records = _trades(env)
    env.produce(records, version=2)
    first = env.worker()
    thread = running(first)
    wait_for(lambda: env.counts()["consumed"] >= N)
    first.stop()
    thread.join(60)
    assert len(env.rows()) == N  # the content-identical twins are all kept

    env.produce(records, version=2)  # the same records again, e.g. `k2 replay asx` twice
    second = env.worker()  # a new worker: nothing in memory
    running(second)
    wait_for(lambda: env.counts()["consumed"] >= 2 * N)

    assert sorted(r["trade_id"] for r in env.rows()) == sorted(f"T{n}" for n in range(N))
    counts = env.counts()
    assert counts == {"consumed": 2 * N, "written": N, "dead_lettered": N}
    assert counts["consumed"] == counts["written"] + counts["dead_lettered"]
    dlq_topic = env.catalogue.dataset("trades").dlq_topic
    reasons = Counter(x.reason for x in read_letters(env.stack.kafka_bootstrap_servers, dlq_topic))
    assert reasons == {"duplicate": N}
