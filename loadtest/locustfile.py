"""K2 ingest load: a market-data feed publishing quotes and trades (3:1, as on a real venue)."""

from __future__ import annotations

from locust import constant_throughput, task

from loadtest.kafka_user import KafkaUser


class MarketDataFeed(KafkaUser):
    """One feed handler: `--k2-batch` records per task, 20 tasks per second at most."""

    wait_time = constant_throughput(20)

    @task(3)
    def quotes(self) -> None:
        self.send_many("quotes", self.market.quote)

    @task(1)
    def trades(self) -> None:
        self.send_many("trades", self.market.trade)
