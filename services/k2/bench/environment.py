"""The stack a benchmark or load run talks to, and a freshly bootstrapped prefix on it.

With every `K2_*` variable set (`eval $(./task stack:env)`) the persistent stack is used as is;
otherwise an ephemeral local stack is started in a temporary state directory and purged at
the end.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from k2.bootstrap import bootstrap_stack
from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.settings import Endpoints, endpoint_env_names


def _say(line: str) -> None:
    print(f"[k2 bench] {line}", file=sys.stderr, flush=True)


def endpoints_from_env() -> Endpoints | None:
    """The stack named by `K2_*` variables, or None when any is missing."""
    if all(name in os.environ for name in endpoint_env_names()):
        return Endpoints()  # fields come from K2_* variables
    return None


@contextmanager
def stack_endpoints(log: bool = True) -> Iterator[Endpoints]:
    """The persistent stack's endpoints, or those of an ephemeral stack started for the run."""
    found = endpoints_from_env()
    if found is not None:
        if log:
            _say("using the stack named by K2_* variables")
        yield found
        return
    from k2stack.local.stack import LocalStack  # only needed without a persistent stack

    state = Path(tempfile.mkdtemp(prefix="k2-bench-stack-"))
    stack = LocalStack(state, ephemeral_ports=True, log=_say if log else lambda _: None)
    try:
        yield Endpoints.from_env(stack.up())
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
