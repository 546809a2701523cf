"""The one ingest worker process runner: a worker that dies says so, with its log."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from k2.children import WorkerError, WorkerProcess
from k2.net import free_port


def test_a_worker_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    # An unknown table: the command line refuses it before touching any service.
    worker = WorkerProcess("no_such_table", tmp_path / "logs" / "w.log", dict(os.environ))
    assert worker.proc.wait(60) == 2
    assert not worker.alive()

    with pytest.raises(WorkerError, match=r"no_such_table exited with 2; see .*w\.log"):
        worker.check_alive()
    assert "--table must be one of trades, quotes, reference_data" in worker.log_text()
    assert worker.stop() == 2  # reaping an exited worker is harmless
    assert worker.metrics_url is None and worker.scrape() is None


def test_free_port_is_bindable_on_loopback() -> None:
    port = free_port()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # nothing holds it
