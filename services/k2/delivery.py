"""Blocking produce: send messages and wait until Kafka has acknowledged every one.

The one helper for "these messages must be in the topic before we go on" (tests, benchmark
preloads, one-off sends). A full local queue is not an error here: the send waits for
acknowledgements to free it (librdkafka raises BufferError instead of blocking). Streaming
publishers (`k2.replay.producer.RecordPublisher`) and the DLQ writer keep their own loops.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from k2.errors import ServiceUnavailableError

Headers = Sequence[tuple[str, bytes]]
Outgoing = (
    tuple[bytes | str | None, bytes | None] | tuple[bytes | str | None, bytes | None, Headers]
)
"""(key, value) or (key, value, headers)."""
DeliveryCallback = Callable[[KafkaError | None, Message], None]
QUEUE_FULL_WAIT_S = 0.05


class DeliveryError(ServiceUnavailableError):
    """Kafka did not acknowledge every message within the time allowed."""


def send(
    producer: Producer,
    topic: str,
    value: bytes | None,
    *,
    key: bytes | str | None = None,
    headers: Headers | None = None,
    on_delivery: DeliveryCallback | None = None,
) -> None:
    """`producer.produce`, waiting for acknowledgements while the local queue is full."""
    extra: dict[str, Any] = {}
    if headers is not None:
        extra["headers"] = list(headers)
    if on_delivery is not None:
        extra["on_delivery"] = on_delivery
    while True:
        try:
            producer.produce(topic, value=value, key=key, **extra)
        except BufferError:
            producer.poll(QUEUE_FULL_WAIT_S)
        else:
            return


def produce_all(
    producer: Producer, topic: str, messages: Iterable[Outgoing], *, timeout_s: float = 60.0
) -> int:
    """Send every message, then block until each is acknowledged; returns how many were sent.

    Raises:
        DeliveryError: some messages were refused or still unacknowledged after `timeout_s`.
    """
    failures: list[str] = []

    # One callback for every message: a closure per message halves the send rate.
    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(str(error))

    count = 0
    for message in messages:
        key, value, *rest = message
        send(
            producer,
            topic,
            value,
            key=key,
            headers=rest[0] if rest else None,
            on_delivery=delivered,
        )
        count += 1
    remaining = producer.flush(timeout_s)
    if remaining or failures:
        raise DeliveryError(
            f"{topic}: {remaining} of {count} messages unacknowledged after {timeout_s:.0f}s, "
            f"{len(failures)} refused{': ' + failures[0] if failures else ''}"
        )
    return count
