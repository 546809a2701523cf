"""Blocking produce: a message Kafka never acknowledges is an error, never a silent loss."""

from __future__ import annotations

import pytest

from k2 import kafka
from k2.delivery import DeliveryError, produce_all
from k2.errors import ServiceUnavailableError
from k2.net import free_port


def test_unacknowledged_messages_raise_with_the_count() -> None:
    # Nothing listens there: librdkafka gives up on each message after its timeout.
    producer = kafka.producer(f"127.0.0.1:{free_port()}", **{"message.timeout.ms": 1000})

    with pytest.raises(
        DeliveryError, match=r"k2\.test: 0 of 3 messages unacknowledged .* 3 refused"
    ) as raised:
        produce_all(producer, "k2.test", [(b"k", b"v")] * 3, timeout_s=20)

    assert isinstance(raised.value, ServiceUnavailableError)  # exit code 6 on the command line
