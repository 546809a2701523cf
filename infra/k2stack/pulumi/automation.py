"""Run the real Pulumi engine on K2's program through the Automation API (inline program).

Python's language host cannot be had here, but an inline program needs only the `pulumi` CLI
(built by `cli_install`) and `pulumi-resource-pulumi-python` for dynamic providers. State
lives in a local file backend under K2's state directory (outside git), its secrets encrypted
with a passphrase generated once per backend and kept there (0600).

A stack's config is the committed `Pulumi.<base>.yaml` (`ci-<id>` -> `Pulumi.ci.yaml`) plus
per-run plain values and secrets; secrets are set only when the stack lacks them, since data
volumes keep the passwords they were initialised with.
"""

from __future__ import annotations

import json
import os
import secrets as token
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

from k2.errors import ConfigError, StackError
from k2stack.local.context import default_cache_dir
from k2stack.pulumi.cli_install import ensure_pulumi_cli
from k2stack.pulumi.config import KAFKA_SECRET_KEYS, NAMESPACE, SECRET_KEYS

PROJECT = "k2"
DOCKER_PROVIDER_KEY = f"{NAMESPACE}:dockerProvider"
# The plugin version the pinned `pulumi-docker` SDK (5.2.0) asks the engine for.
DOCKER_PLUGIN_VERSION = "5.2.0"
# Holds the passphrase (0600), not a password in the code.
_PASSPHRASE_FILE = "passphrase"  # noqa: S105


def pulumi_dir() -> Path:
    """The file backend, passphrase and workspaces (`K2_PULUMI_DIR` overrides)."""
    if "K2_PULUMI_DIR" in os.environ:
        return Path(os.environ["K2_PULUMI_DIR"])
    if os.geteuid() == 0:
        return Path("/var/lib/k2/pulumi")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "k2" / "pulumi"


def stack_base(stack_name: str) -> str:
    """The committed config a stack uses: `ci-1234` -> `ci`, `dev` -> `dev`."""
    base = stack_name.split("-", 1)[0]
    if not base.isalnum() or not base.islower():
        raise ConfigError(f"stack name {stack_name!r} must start with a lowercase config name")
    return base


def committed_config_file(stack_name: str, repo_root: Path) -> Path:
    """`<repo>/Pulumi.<base>.yaml`: the config committed for the stack's kind."""
    path = repo_root / f"Pulumi.{stack_base(stack_name)}.yaml"
    if not path.is_file():
        raise ConfigError(f"stack {stack_name}: no committed config {path}")
    return path


def read_config_file(path: Path) -> dict[str, str]:
    """The plain `config:` values of a committed `Pulumi.<stack>.yaml`, as config strings."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read stack config {path}: {e}") from e
    values: dict[str, str] = {}
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, Mapping):
            # Committed files hold no secrets: those come per stack from `secrets`.
            raise ConfigError(f"{path}: {key} is not a plain value")
        values[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return values


def required_secret_keys(config: Mapping[str, str]) -> tuple[str, ...]:
    """The secret config keys a stack with `config` must have."""
    keys: tuple[str, ...] = SECRET_KEYS
    if config.get(f"{NAMESPACE}:kafkaSecurity") == "scram":
        keys += KAFKA_SECRET_KEYS
    return tuple(f"{NAMESPACE}:{key}" for key in keys)


def generated_secrets(config_keys: Iterable[str]) -> dict[str, str]:
    """A fresh random value per key: 32 URL-safe characters (valid in URLs, JAAS, CLI args)."""
    return {key: token.token_urlsafe(24) for key in config_keys}


def stack_config(
    config_file: Path, extra_config: Mapping[str, str], secrets: Mapping[str, str]
) -> dict[str, auto.ConfigValue]:
    """The committed config, then `extra_config` over it, then `secrets` (as secrets)."""
    values = {key: auto.ConfigValue(value) for key, value in read_config_file(config_file).items()}
    values.update({key: auto.ConfigValue(value) for key, value in extra_config.items()})
    values.update({key: auto.ConfigValue(value, secret=True) for key, value in secrets.items()})
    return values


def passphrase(backend_dir: Path) -> str:
    """The backend's secrets passphrase, generated on first use and kept in a 0600 file."""
    path = backend_dir / _PASSPHRASE_FILE
    backend_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        # O_EXCL: of two concurrent first runs, one writes and both read the same value.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(token.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def _env(backend_dir: Path, bin_dir: Path) -> dict[str, str]:
    # The venv's bin first: the engine runs `pulumi-resource-pulumi-python`, which runs
    # `python3 -m pulumi.dynamic` -- it must be this venv's python, where k2stack is importable.
    venv_bin = Path(sys.prefix) / "bin"
    path = os.pathsep.join([str(venv_bin), str(bin_dir), os.environ.get("PATH", "")])
    return {
        "PATH": path,
        "PULUMI_BACKEND_URL": f"file://{backend_dir / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": passphrase(backend_dir),
        "PULUMI_SKIP_UPDATE_CHECK": "1",
    }


def docker_provider_available(bin_dir: Path | None = None) -> bool:
    """Whether the `docker` resource plugin the pinned SDK needs is installed."""
    bin_dir = bin_dir or ensure_pulumi_cli(default_cache_dir())
    try:
        listed = subprocess.run(
            [str(bin_dir / "pulumi"), "plugin", "ls", "--json"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "1"},
        )
        plugins: list[dict[str, Any]] = json.loads(listed.stdout or "[]") or []
    except (OSError, subprocess.CalledProcessError, json.JSONDecodeError) as e:
        raise StackError(f"pulumi plugin ls failed: {e}") from e
    return any(
        p.get("name") == "docker"
        and p.get("kind") == "resource"
        and p.get("version") == DOCKER_PLUGIN_VERSION
        for p in plugins
    )


def _on_output(line: str) -> None:
    # The engine masks secret values as [secret] in what it prints.
    print(line, file=sys.stderr, flush=True)


def _failed(what: str, e: auto.errors.CommandError) -> StackError:
    # The engine's stdout was streamed already: keep only its stderr (the error lines).
    _, _, stderr = str(e).partition("\n stderr: ")
    return StackError(f"{what} failed: {stderr.strip() or e}")


def _stack(
    stack_name: str, program: auto.PulumiFn, *, create: bool, bin_dir: Path | None = None
) -> auto.Stack:
    bin_dir = bin_dir or ensure_pulumi_cli(default_cache_dir())
    backend = pulumi_dir()
    work_dir = backend / "workspaces" / stack_name
    work_dir.mkdir(parents=True, exist_ok=True)
    (backend / "state").mkdir(exist_ok=True)
    options = auto.LocalWorkspaceOptions(
        work_dir=str(work_dir),
        env_vars=_env(backend, bin_dir),
        secrets_provider="passphrase",
        pulumi_command=auto.PulumiCommand(root=str(bin_dir.parent)),
    )
    select = auto.create_or_select_stack if create else auto.select_stack
    return select(stack_name, project_name=PROJECT, program=program, opts=options)


def _values(outputs: auto.OutputMap) -> dict[str, str]:
    return {
        key: out.value if isinstance(out.value, str) else json.dumps(out.value)
        for key, out in outputs.items()
    }


def up(
    stack_name: str,
    config_file: Path,
    *,
    program: Callable[[], None],
    extra_config: Mapping[str, str],
    secrets: Mapping[str, str],
    initial_config: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Create or update the stack; return its outputs, secrets revealed.

    `secrets` and `initial_config` (plain) are set only where the stack has no value yet:
    generated passwords stay the ones the data volumes were initialised with, and a per-run
    choice such as a port offset stays what the stack was created with.
    """
    bin_dir = ensure_pulumi_cli(default_cache_dir())
    try:
        stack = _stack(stack_name, program, create=True, bin_dir=bin_dir)
        existing = stack.get_all_config()
        initial = {k: v for k, v in (initial_config or {}).items() if k not in existing}
        missing = {key: value for key, value in secrets.items() if key not in existing}
        config = stack_config(config_file, {**initial, **extra_config}, missing)
        provider = "plugin" if docker_provider_available(bin_dir) else "engine-api"
        config[DOCKER_PROVIDER_KEY] = auto.ConfigValue(provider)
        stack.set_all_config(config)
        result = stack.up(on_output=_on_output, color="never", show_secrets=False)
    except auto.errors.CommandError as e:
        raise _failed(f"pulumi up of stack {stack_name}", e) from e
    return _values(result.outputs)


def _no_program() -> None:
    """`destroy` and `outputs` need a program to select an inline stack, never to run one."""


def outputs(stack_name: str) -> dict[str, str]:
    """The stack's outputs, secrets revealed."""
    try:
        return _values(_stack(stack_name, _no_program, create=False).outputs())
    except auto.errors.StackNotFoundError as e:
        raise StackError(f"no stack {stack_name} in {pulumi_dir()}") from e
    except auto.errors.CommandError as e:
        raise _failed(f"pulumi stack output of {stack_name}", e) from e


def destroy(stack_name: str) -> bool:
    """Destroy every resource of the stack, then remove the stack; False if there was none."""
    work_dir = pulumi_dir() / "workspaces" / stack_name
    try:
        stack = _stack(stack_name, _no_program, create=False)
    except auto.errors.StackNotFoundError:
        shutil.rmtree(work_dir, ignore_errors=True)
        return False
    try:
        stack.destroy(on_output=_on_output, color="never", show_secrets=False)
        stack.workspace.remove_stack(stack_name)
    except auto.errors.CommandError as e:
        raise _failed(f"pulumi destroy of stack {stack_name}", e) from e
    # The workspace holds the stack's config file (its secrets encrypted): gone with it.
    shutil.rmtree(work_dir, ignore_errors=True)
    return True
