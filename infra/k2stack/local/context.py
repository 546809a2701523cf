"""Where a local stack lives: state directory, shared cache, ports and credentials."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from k2stack.topology import Credentials, ServiceName


def default_cache_dir() -> Path:
    """Downloads (jars, tarballs, .debs) shared by every stack on this machine, outside git."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("K2_CACHE_DIR", str(Path(base) / "k2")))


def default_state_dir() -> Path:
    """The persistent local stack's data, logs and pid files, outside git.

    As root the stack lives under /var/lib/k2: PostgreSQL then runs as the `postgres` user,
    which cannot enter root's home directory.
    """
    if "K2_STACK_DIR" in os.environ:
        return Path(os.environ["K2_STACK_DIR"])
    if os.geteuid() == 0:
        return Path("/var/lib/k2/stack")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "k2" / "stack"


@dataclass(frozen=True)
class StackContext:
    """Everything a launcher needs to know about the stack it is part of."""

    state_dir: Path
    cache_dir: Path
    ports: Mapping[ServiceName, Mapping[str, int]]
    credentials: Credentials

    def port(self, service: ServiceName, name: str) -> int:
        return self.ports[service][name]

    def service_dir(self, service: ServiceName) -> Path:
        """The service's own directory under the state directory (config, data)."""
        return self.state_dir / "services" / service.value

    def data_dir(self, service: ServiceName, name: str = "data") -> Path:
        return self.service_dir(service) / name

    def log_file(self, service: ServiceName) -> Path:
        return self.state_dir / "logs" / f"{service.value}.log"

    def pid_file(self, service: ServiceName) -> Path:
        return self.state_dir / "pids" / f"{service.value}.pid"

    def artifact_dir(self, name: str) -> Path:
        """A directory in the shared download cache."""
        return self.cache_dir / name
