"""`k2 replay asx` into the real Kafka + registry, read back and counted."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from k2 import kafka
from k2.cli.main import app
from k2.contracts.catalogue import Catalogue
from k2.contracts.schemas import latest_schema
from k2.serde.avro import decode_body
from k2.settings import Endpoints

from .conftest import SMALL

pytestmark = pytest.mark.integration


def _read_all(
    stack: Endpoints, topic: str, expected: int, timeout: float = 60
) -> list[tuple[bytes, bytes]]:
    consumer = kafka.consumer(
        stack.kafka_bootstrap_servers,
        **{
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        },
    )
    consumer.subscribe([topic])
    out: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            out.append((message.key(), message.value()))
        # Anything beyond the expected count would be a duplicate: wait a little for it.
        extra_deadline = time.monotonic() + 2
        while time.monotonic() < extra_deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                out.append((message.key(), message.value()))
    finally:
        consumer.close()
    return out


def test_replay_publishes_every_row_once_per_run(
    stack: Endpoints, prefixed: Catalogue, small_data_dir: Path
) -> None:
    runner = CliRunner()
    args = ["replay", "asx", "--data-dir", str(small_data_dir), "--prefix", _prefix(prefixed)]
    result = runner.invoke(app, args, env=stack.as_env())
    assert result.exit_code == 0, result.output
    trades_expected = sum(t for _, t, _ in SMALL.values())
    quotes_expected = sum(q for _, _, q in SMALL.values())

    trades = _read_all(stack, prefixed.dataset("trades").topic.name, trades_expected)
    quotes = _read_all(stack, prefixed.dataset("quotes").topic.name, quotes_expected)
    reference = _read_all(stack, prefixed.dataset("reference_data").topic.name, len(SMALL))
    assert (len(trades), len(quotes), len(reference)) == (trades_expected, quotes_expected, 2)

    trade_schema = latest_schema("trade")
    decoded = [decode_body(trade_schema, value[5:]) for _, value in trades]
    assert Counter(r["symbol"] for r in decoded) == {"MWR": 11, "DVN": 232}
    assert {key.decode() for key, _ in trades} == {"MWR", "DVN"}  # keyed by symbol
    ids = [r["trade_id"] for r in decoded]
    assert len(set(ids)) == len(ids)
    first_mwr = next(r for r in decoded if r["trade_id"] == "XASX-MWR-20140310-1")
    assert str(first_mwr["price"].normalize()) == "1.11"
    assert {key.decode() for key, _ in reference} == {"XASX|MWR", "XASX|DVN"}

    # A second replay publishes the same identities again (ingest dedups on them).
    again = runner.invoke(app, [*args, "--dataset", "trades"], env=stack.as_env())
    assert again.exit_code == 0, again.output
    both = _read_all(stack, prefixed.dataset("trades").topic.name, 2 * trades_expected)
    ids_twice = Counter(decode_body(trade_schema, v[5:])["trade_id"] for _, v in both)
    assert set(ids_twice.values()) == {2}
    assert set(ids_twice) == set(ids)


def test_replay_with_malformed_rows_publishes_nothing(
    stack: Endpoints, prefixed: Catalogue, small_data_dir: Path
) -> None:
    path = small_data_dir / "trades" / "3153.csv"
    path.write_bytes(path.read_bytes() + b"03/14/2014,10:00:00.000,oops,1,0,,\r\n")
    result = CliRunner().invoke(
        app,
        ["replay", "asx", "--data-dir", str(small_data_dir), "--prefix", _prefix(prefixed)],
        env=stack.as_env(),
    )
    assert result.exit_code == 1
    assert "3153.csv:12" in result.output and "nothing was published" in result.output
    assert _read_all(stack, prefixed.dataset("trades").topic.name, 1, timeout=8) == []


def _prefix(catalogue: Catalogue) -> str:
    return catalogue.namespace.removesuffix("market")
