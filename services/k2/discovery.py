"""Where the stack is: the `K2_*` variables, else the running local stack's own manifest.

Every `k2` command and the `k2.query` library find their endpoints here, in this order:

1. the `K2_*` endpoint variables, when every one of them is set (`eval "$(./task stack:env)"`,
   a Pulumi stack's outputs, CI);
2. else the local stack whose state directory is `K2_STACK_DIR` or the default state dir
   (`k2stack.local.context.default_state_dir`), read from its `stack.json`, when its services
   run;
3. else a `StackNotFoundError` that says what to run.

Some but not all variables set is a mistake, not a reason to look elsewhere: it fails naming
the missing ones, so a half-exported environment never silently mixes with a local stack.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from k2.errors import ConfigError, StackError, StackNotFoundError
from k2.settings import ENV_PREFIX, Endpoints

START_HINT = "start one with `./task stack:up` (or `./task demo`), or set the K2_* variables"


def find_stack_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The `K2_*` variables of the stack to use (see the module docstring for the order).

    Raises:
        ConfigError: only some `K2_*` endpoint variables are set.
        StackNotFoundError: none are set and no local stack runs.
    """
    env = os.environ if env is None else env
    names = _required_names()
    given = [name for name in names if env.get(name)]
    if len(given) == len(names):
        return {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    if given:
        missing = ", ".join(name for name in names if name not in given)
        raise ConfigError(
            f"some K2_* variables are set but not {missing};\n"
            'set them all (`eval "$(./task stack:env)"`) or unset them all to use the local stack'
        )
    return _local_stack_env(env)


def _required_names() -> tuple[str, ...]:
    # Optional settings (a principal's credential, given only to the processes that use it)
    # are no sign of a stack: only the ones every stack sets decide.
    return tuple(
        ENV_PREFIX + name.upper()
        for name, field in Endpoints.model_fields.items()
        if field.is_required()
    )


def find_endpoints(env: Mapping[str, str] | None = None, *, export: bool = False) -> Endpoints:
    """The stack's endpoints; `export` also puts the local stack's `K2_*` into os.environ.

    Commands export, so that settings read elsewhere from the environment (Kafka client
    security, child processes) see the same stack; a library call leaves os.environ alone.
    """
    found = find_stack_env(env)
    try:
        endpoints = Endpoints.from_env(found)
    except ValidationError as e:
        problems = "; ".join(
            f"{ENV_PREFIX}{''.join(str(p) for p in error['loc']).upper()}: {error['msg']}"
            for error in e.errors()
        )
        raise ConfigError(f"invalid K2_* settings: {problems}") from e
    if export:
        for name, value in found.items():
            os.environ.setdefault(name, value)
    return endpoints


def _local_stack_env(env: Mapping[str, str]) -> dict[str, str]:
    # Imported here: the stack tooling is only needed when no variables are set.
    from k2stack.local.context import default_state_dir
    from k2stack.local.stack import MANIFEST, LocalStack

    state_dir = Path(env["K2_STACK_DIR"]) if env.get("K2_STACK_DIR") else default_state_dir()
    if not (state_dir / MANIFEST).is_file():
        raise StackNotFoundError(
            f"no K2 stack found: the K2_* variables are not set and there is no local stack "
            f"at {state_dir};\n{START_HINT}"
        )
    stack = LocalStack(state_dir, log=lambda _: None)
    try:
        # status() probes only the processes that run (a stopped one is known by its pid file).
        stopped = sorted({s.service.value for s in stack.status() if s.pid is None})
        stack_env = stack.env()
    except StackError as e:
        raise StackNotFoundError(f"the local stack at {state_dir} is unusable: {e}") from e
    if stopped:
        raise StackNotFoundError(
            f"the local stack at {state_dir} is not running ({', '.join(stopped)} stopped);\n"
            "start it with `./task stack:up`"
        )
    return stack_env
