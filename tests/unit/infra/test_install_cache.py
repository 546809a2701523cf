"""The artifact cache under concurrency: one process fetches, the others find it complete.

A cold CI run had two xdist workers extract the same Debian package at once (FileExistsError).
The fetch commands are replaced by stand-ins that take their time, so the race is real and the
test needs no registry.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from k2stack.local import install


def test_concurrent_fetches_of_one_package_fetch_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched: list[str] = []

    def run_step(argv: list[str], what: str, cwd: Path | None = None) -> None:
        fetched.append(argv[0])
        time.sleep(0.2)  # long enough for every thread to arrive meanwhile
        if argv[0] == "apt-get":
            assert cwd is not None
            (cwd / "prometheus_2.42.0_amd64.deb").write_bytes(b"deb")
        else:  # dpkg-deb -x <deb> <target>
            (Path(argv[3]) / "usr" / "bin").mkdir(parents=True)

    monkeypatch.setattr(install, "run_step", run_step)
    results: list[Path] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(install.debian_package(tmp_path, "prometheus", "2.42.0"))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert fetched == ["apt-get", "dpkg-deb"]  # once, by one of them
    assert len(set(results)) == 1 and install.is_complete(results[0])
    assert (results[0] / "usr" / "bin").is_dir()
