"""Standing up a committed stack (`Pulumi.<stack>.yaml`) on the real engine: the one path.

`k2-stack pulumi up` and `task test:docker` both come here: the committed config, a run id
for ephemeral stacks (`ci` -> `ci-<id>`, also their Docker name prefix), generated secrets, a
free block of host ports for an ephemeral stack that publishes, and any `overrides` the caller
gives (e.g. `k2:grafana=false` where Grafana's image cannot be had).
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Mapping
from pathlib import Path

from k2.errors import ConfigError, StackError
from k2stack.local.ports import is_free
from k2stack.pulumi import automation
from k2stack.pulumi.config import validate

# The committed Pulumi.<stack>.yaml files sit at the repository root.
REPO_ROOT = Path(__file__).resolve().parents[3]
_RUN_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,20}")
# Whole thousands keep each stack's ports recognisable (base port + N000); the config allows
# offsets up to 30000 and the topology's ports stay below 65536 with any of them.
_PORT_OFFSETS = list(range(1000, 30001, 1000))


def stack_name_for(stack: str, run_id: str | None, ephemeral: bool) -> str:
    """`ci` + id -> `ci-<id>`; an ephemeral stack without an id gets a fresh one."""
    if run_id is None and ephemeral and "-" not in stack:
        run_id = uuid.uuid4().hex[:8]
    if run_id is None:
        return stack
    if not _RUN_ID.fullmatch(run_id):
        raise ConfigError(f"run id {run_id!r}: lowercase letters, digits and -, at most 21")
    return f"{stack}-{run_id}"


def free_port_offset(stack: str, config: Mapping[str, str], secrets: Mapping[str, str]) -> int:
    """A port offset at which every host port the stack would publish is free now."""
    from k2stack.docker.stack_spec import stack_spec
    from k2stack.pulumi.program import k2_version

    for offset in random.sample(_PORT_OFFSETS, k=len(_PORT_OFFSETS)):
        values = {**config, **secrets, "k2:portOffset": str(offset)}
        spec = stack_spec(validate(values, frozenset(secrets), stack), worker_version=k2_version())
        if all(is_free(p.host_port) for c in spec.containers for p in c.ports):
            return offset
    raise StackError("no port offset leaves every port of the stack free on this host")


def up_committed(
    stack: str,
    run_id: str | None = None,
    overrides: Mapping[str, str] | None = None,
    config_dir: Path = REPO_ROOT,
) -> tuple[str, dict[str, str]]:
    """Create or update the stack from its committed config; (stack name, outputs)."""
    from k2stack.pulumi.program import declare

    base_config = automation.read_config_file(automation.committed_config_file(stack, config_dir))
    base_config.update(overrides or {})
    ephemeral = base_config.get("k2:ephemeral") == "true"
    name = stack_name_for(stack, run_id, ephemeral)
    extra = dict(overrides or {})
    # Ephemeral stacks take their name as Docker name prefix (unique per run).
    if "k2:namePrefix" not in base_config:
        extra["k2:namePrefix"] = name
    secrets = automation.generated_secrets(automation.required_secret_keys(base_config))
    initial: dict[str, str] = {}
    # Several ephemeral stacks share a host: each publishes on its own block of ports.
    publishes = base_config.get("k2:publishPorts") != "false"
    if ephemeral and publishes and "k2:portOffset" not in base_config:
        offset = free_port_offset(name, {**base_config, **extra}, secrets)
        initial["k2:portOffset"] = str(offset)
    outputs = automation.up(
        name,
        automation.committed_config_file(name, config_dir),
        program=declare,
        extra_config=extra,
        secrets=secrets,
        initial_config=initial,
    )
    return name, outputs
