"""The stack a benchmark or load run talks to, and a freshly bootstrapped prefix on it.

With every `K2_*` variable set (`eval $(./task stack:env)`) the persistent stack is used as is;
otherwise an ephemeral local stack is started in a temporary state directory and purged at
the end. A local stack's state directory also tells its services' pids (for CPU accounting);
a stack run elsewhere has none.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from k2.bench.cpu import ServicePids
from k2.bootstrap import bootstrap_stack
from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.errors import StackError
from k2.settings import Endpoints, endpoint_env_names


def _say(line: str) -> None:
    print(f"[k2 bench] {line}", file=sys.stderr, flush=True)


def endpoints_from_env() -> Endpoints | None:
    """The stack named by `K2_*` variables, or None when any is missing."""
    if all(name in os.environ for name in endpoint_env_names()):
        return Endpoints()  # fields come from K2_* variables
    return None


@dataclass(frozen=True)
class StackUnderTest:
    """The stack a run talks to; `state_dir` is set when it is a local stack of this machine."""

    endpoints: Endpoints
    state_dir: Path | None

    def service_pids(self) -> ServicePids:
        """Each service's pid from the local stack's pid files (None where not running)."""
        from k2stack.local import processes
        from k2stack.local.stack import LocalStack
        from k2stack.topology import ServiceName

        unknown = dict.fromkeys(name.value for name in ServiceName)
        if self.state_dir is None:
            return ServicePids(unknown, "no local state directory: a stack run elsewhere")
        try:
            context = LocalStack(self.state_dir, log=lambda _: None).context()
        except StackError as e:
            return ServicePids(unknown, str(e))
        pids: dict[str, int | None] = {}
        for name in ServiceName:
            running = processes.running(context.pid_file(name))
            pids[name.value] = running.pid if running is not None else None
        return ServicePids(pids)


def local_state_dir(endpoints: Endpoints) -> Path | None:
    """The state directory of the local stack these endpoints name (`K2_STACK_DIR` or the
    default), or None when there is none or its ports differ (a stack run elsewhere)."""
    from k2stack.local.context import default_state_dir
    from k2stack.local.stack import LocalStack

    state = default_state_dir()
    stack = LocalStack(state, log=lambda _: None)
    if not stack.manifest_path.is_file():
        return None
    try:
        local = Endpoints.from_env(stack.env())
    except StackError:
        return None
    return state if local.kafka_bootstrap_servers == endpoints.kafka_bootstrap_servers else None


@contextmanager
def stack_under_test(log: bool = True) -> Iterator[StackUnderTest]:
    """The persistent stack named by `K2_*` variables, or an ephemeral one started for the run."""
    found = endpoints_from_env()
    if found is not None:
        if log:
            _say("using the stack named by K2_* variables")
        yield StackUnderTest(found, local_state_dir(found))
        return
    from k2stack.local.stack import LocalStack  # only needed without a persistent stack

    state = Path(tempfile.mkdtemp(prefix="k2-bench-stack-"))
    stack = LocalStack(state, ephemeral_ports=True, log=_say if log else lambda _: None)
    try:
        yield StackUnderTest(Endpoints.from_env(stack.up()), state)
    finally:
        stack.down(purge=True)


def unique_prefix(kind: str) -> str:
    """A fresh catalogue prefix, e.g. `bench3f9a1c_`."""
    return f"{kind}{uuid.uuid4().hex[:8]}_"


def bootstrapped(endpoints: Endpoints, prefix: str) -> Catalogue:
    """Topics, subjects and tables of the catalogue under `prefix`, created now."""
    catalogue = load_catalogue().with_prefix(prefix)
    bootstrap_stack(catalogue, endpoints)
    return catalogue
