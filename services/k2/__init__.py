"""K2: market data from Kafka into Apache Iceberg, exactly and durably."""

__version__ = "0.1.0"
