"""Run Locust's market-data user in-process for a few seconds and print what it counted.

`python -m loadtest.probe --prefix p_ --seconds 5 [--users 2]` prints one JSON object: request
events seen (successes, failures) per dataset, and the producers' own counts (produced, acked,
failed). The integration test runs it as a child process: Locust monkey-patches the standard
library with gevent at import, which must not happen inside the test runner.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from typing import Any

import gevent  # type: ignore[import-untyped]  # no stubs in the lock
from locust.env import Environment

from loadtest.kafka_user import KafkaUser, add_arguments
from loadtest.locustfile import MarketDataFeed

STARTED: list[KafkaUser] = []


class CountedFeed(MarketDataFeed):
    """The locustfile's user, remembered so its producer counts can be read at the end."""

    def on_start(self) -> None:
        STARTED.append(self)
        super().on_start()


def _all_warm(users: int) -> bool:
    kafka = [getattr(u, "kafka", None) for u in STARTED]
    return len(kafka) >= users and all(k is not None and k.acked > 0 for k in kafka)


def probe(prefix: str, seconds: float, users: int, batch: int) -> dict[str, Any]:
    """Run `users` feeds for `seconds`, stop them (flushing), and report the counts."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = parser.parse_args(["--k2-prefix", prefix, "--k2-batch", str(batch)])
    env = Environment(user_classes=[CountedFeed], parsed_options=options)
    events: Counter[str] = Counter()

    def on_request(name: str, exception: BaseException | None, **_: Any) -> None:
        events[f"{name}.{'failure' if exception else 'success'}"] += 1

    env.events.request.add_listener(on_request)  # type: ignore[no-untyped-call]
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=users)
    # The measured window starts once every user is up and has had an acknowledgement: on a
    # busy machine the first registry lookup and broker connection can take seconds.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _all_warm(users):
        gevent.sleep(0.1)
    gevent.sleep(seconds)
    runner.quit()  # stops users: on_stop flushes every producer
    clients = [u.kafka for u in STARTED]
    return {
        "events": dict(events),
        "produced": sum(c.produced for c in clients),
        "acked": sum(c.acked for c in clients),
        "failed": sum(c.failed for c in clients),
        "queue_full": sum(c.queue_full for c in clients),
        "stats_requests": env.stats.total.num_requests,
        "stats_failures": env.stats.total.num_failures,
    }


def main() -> None:
    """Command line: print the probe's counts as JSON."""
    parser = argparse.ArgumentParser(prog="python -m loadtest.probe")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--users", type=int, default=2)
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(probe(args.prefix, args.seconds, args.users, args.batch)))


if __name__ == "__main__":
    main()
