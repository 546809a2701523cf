"""The one place K2 builds a Kafka client's configuration.

Every producer, consumer and admin client in K2 starts from `client_config(...)`: the bootstrap
servers plus the stack's authentication (`K2_KAFKA_*`, see `k2.settings.KafkaClientSecurity`),
so a cluster that turns SASL/SCRAM on needs no change anywhere else.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from k2.errors import ConfigError
from k2.settings import KAFKA_ENV_PREFIX, KafkaClientSecurity


def security_config() -> dict[str, str]:
    """The `K2_KAFKA_*` authentication settings (empty for PLAINTEXT); ConfigError if invalid."""
    return _security().client_config()


def python_security_config() -> dict[str, str]:
    """The same settings for kafka-python's clients (`KafkaAdminClient(**...)`)."""
    return _security().python_client_config()


def _security() -> KafkaClientSecurity:
    try:
        return KafkaClientSecurity()
    except ValidationError as e:
        # The settings hide their input in errors, so the message never carries the password.
        reasons = "; ".join(_reason(error) for error in e.errors())
        raise ConfigError(f"invalid {KAFKA_ENV_PREFIX}* settings: {reasons}") from e


def _reason(error: ErrorDetails) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    field = "".join(str(part) for part in error["loc"])
    return f"{KAFKA_ENV_PREFIX}{field.upper()}: {message}" if field else message


def client_config(bootstrap_servers: str, **settings: Any) -> dict[str, Any]:
    """librdkafka settings: servers, authentication from the environment, then `settings`.

    `settings` use librdkafka's dotted names; pass them as a dict with `**{"acks": "all"}`.
    """
    return {"bootstrap.servers": bootstrap_servers, **security_config(), **settings}


def producer(bootstrap_servers: str, **settings: Any) -> Producer:
    return Producer(client_config(bootstrap_servers, **settings))


def consumer(bootstrap_servers: str, **settings: Any) -> Consumer:
    return Consumer(client_config(bootstrap_servers, **settings))


def admin(bootstrap_servers: str, **settings: Any) -> AdminClient:
    return AdminClient(client_config(bootstrap_servers, **settings))
