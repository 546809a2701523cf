"""What the local backend needs from each service: install it, prepare it, start it.

Each service of the topology has one `Launcher` in `k2stack.local.services`; the stack
orchestrator (`k2stack.local.stack`) drives them in dependency order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from k2stack.local.context import StackContext
from k2stack.topology import ServiceSpec


@dataclass(frozen=True)
class LaunchCommand:
    """A process to start: argv, extra environment and working directory."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    # Run as this OS user (PostgreSQL refuses to run as root); None: as ourselves.
    user: str | None = None


class Launcher(ABC):
    """Runs one service of the topology as a native process."""

    spec: ServiceSpec

    @abstractmethod
    def install(self, ctx: StackContext) -> None:
        """Fetch the service's artifacts into the shared cache (idempotent, prints progress)."""

    def prepare(self, ctx: StackContext) -> None:  # noqa: B027 - optional hook
        """Write config files and initialise data directories (idempotent)."""

    def artifacts(self, ctx: StackContext) -> tuple[Path, ...]:
        """The cache paths `install` fills and `command` runs from (K2's images copy them)."""
        return ()

    @abstractmethod
    def command(self, ctx: StackContext) -> LaunchCommand:
        """The process that runs the service."""

    def after_healthy(self, ctx: StackContext) -> None:  # noqa: B027 - optional hook
        """One-time setup once the probe passes (databases, buckets, settings); idempotent."""
