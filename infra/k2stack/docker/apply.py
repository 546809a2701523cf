"""Apply container specs through the Docker Engine API: create, wait until ready, remove.

Used by the Docker backend of `k2-stack` and by the Pulumi Engine API provider
(`k2stack.pulumi.engine_api`), so both create exactly what a `ContainerSpec` says.

Invariants: every object created here carries `STACK_LABEL` (how `destroy_stack` and
`leftovers` find it), and nothing without the same label is ever removed or reused: a name
clash with someone else's container, network or volume is an error, never a takeover.
"""

from __future__ import annotations

import io
import sys
import tarfile
import time
from collections.abc import Callable, Mapping
from typing import Any

import docker
from docker.errors import DockerException, NotFound
from docker.models.containers import Container

from k2.errors import StackError
from k2stack.docker.engine import DockerEngine
from k2stack.docker.spec import STACK_LABEL, ContainerSpec, StackSpec
from k2stack.topology import K2_IMAGE_REPOSITORY

Log = Callable[[str], None]

# A container gets this long to stop on SIGTERM before Docker kills it.
STOP_TIMEOUT_S = 30
# How often readiness is polled: health checks run every few seconds, so this costs nothing.
_POLL_S = 0.5
_LOG_LINES = 30
_NS_PER_S = 1_000_000_000


def _stderr(line: str) -> None:
    print(f"[k2 docker] {line}", file=sys.stderr, flush=True)


def docker_client() -> docker.DockerClient:
    """A client of the engine K2 uses (`DockerEngine` discovery); never starts one.

    Starting an engine changes the host (see `k2stack.docker.engine`): that stays an explicit
    step, not a side effect of applying a container (least of all inside a Pulumi provider).
    """
    engine = DockerEngine().find()
    if engine is None:
        raise StackError(
            "no Docker engine answers (DOCKER_HOST, the default socket, K2's own): "
            "start one with `k2-stack docker engine up`"
        )
    return engine.client()


def _owner(labels: Mapping[str, str], what: str) -> str:
    try:
        return labels[STACK_LABEL]
    except KeyError as e:
        raise StackError(f"{what} has no {STACK_LABEL} label: nothing could find it") from e


def _check_ours(found: Mapping[str, str] | None, owner: str, what: str) -> None:
    if (found or {}).get(STACK_LABEL) != owner:
        raise StackError(
            f"{what} exists but is not part of stack {owner!r} ({STACK_LABEL}="
            f"{(found or {}).get(STACK_LABEL)!r}): remove it or choose another name prefix"
        )


def ensure_network(client: docker.DockerClient, name: str, labels: Mapping[str, str]) -> str:
    """The id of bridge network `name`, created unless this stack already made it."""
    owner = _owner(labels, f"network {name}")
    try:
        # The `name` filter matches substrings: keep only the exact name.
        found = [n for n in client.networks.list(names=[name]) if n.name == name]
        if found:
            _check_ours(found[0].attrs.get("Labels"), owner, f"network {name}")
            return str(found[0].id)
        return str(client.networks.create(name, driver="bridge", labels=dict(labels)).id)
    except DockerException as e:
        raise StackError(f"network {name}: {e}") from e


def remove_network(client: docker.DockerClient, name: str) -> None:
    """Remove network `name` (absent is fine)."""
    try:
        for network in client.networks.list(names=[name]):
            if network.name == name:
                network.remove()
    except NotFound:
        return
    except DockerException as e:
        raise StackError(f"network {name}: cannot remove: {e}") from e


def ensure_volume(client: docker.DockerClient, name: str, labels: Mapping[str, str]) -> str:
    """The name of volume `name`, created unless this stack already made it."""
    owner = _owner(labels, f"volume {name}")
    try:
        try:
            volume = client.volumes.get(name)
        except NotFound:
            return str(client.volumes.create(name, driver="local", labels=dict(labels)).name)
        _check_ours(volume.attrs.get("Labels"), owner, f"volume {name}")
        return str(volume.name)
    except DockerException as e:
        raise StackError(f"volume {name}: {e}") from e


def remove_volume(client: docker.DockerClient, name: str) -> None:
    """Remove volume `name` (absent is fine)."""
    try:
        client.volumes.get(name).remove()
    except NotFound:
        return
    except DockerException as e:
        raise StackError(f"volume {name}: cannot remove: {e}") from e


def _restart_policy(spec: ContainerSpec) -> dict[str, Any]:
    # A job runs once: `unless-stopped` would start it again after its exit 0, so a job is
    # never restarted whatever the spec's policy (its failure is reported, not retried).
    if spec.job:
        return {"Name": "no"}
    name, _, retries = spec.restart.partition(":")
    return {"Name": name, "MaximumRetryCount": int(retries or 0)}


def _create_args(client: docker.DockerClient, spec: ContainerSpec) -> dict[str, Any]:
    ports: dict[str, list[tuple[str, int]]] = {}
    for port in spec.ports:
        ports.setdefault(f"{port.container_port}/tcp", []).append((port.host_ip, port.host_port))
    args: dict[str, Any] = {
        "image": spec.image,
        "command": list(spec.command) if spec.command is not None else None,
        "name": spec.name,
        "hostname": spec.hostname,
        "environment": dict(spec.env),
        "ports": ports,
        "volumes": {name: {"bind": path, "mode": "rw"} for name, path in spec.volumes.items()},
        "network": spec.network,
        "networking_config": {
            spec.network: client.api.create_endpoint_config(aliases=list(spec.aliases))
        },
        "mem_limit": f"{spec.memory_mb}m",
        # Equal to mem_limit: no swap, so a memory leak fails fast instead of thrashing.
        "memswap_limit": f"{spec.memory_mb}m",
        "labels": dict(spec.labels),
        "restart_policy": _restart_policy(spec),
        "privileged": False,
    }
    if spec.user is not None:
        args["user"] = spec.user
    if spec.healthcheck is not None:
        check = spec.healthcheck
        args["healthcheck"] = {
            "test": list(check.test),
            "interval": int(check.interval_s * _NS_PER_S),
            "timeout": int(check.timeout_s * _NS_PER_S),
            "start_period": int(check.start_period_s * _NS_PER_S),
            "retries": check.retries,
        }
    return args


def _upload_tar(uploads: Mapping[str, str]) -> bytes:
    """A tar of regular files only: the engine creates missing parents (root, 0755) itself.

    Directory entries are left out on purpose: extracting one over an existing directory
    would reset its mode and owner (a `/tmp` entry would drop the sticky bit).
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, content in sorted(uploads.items()):
            data = content.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(data)
            # A shebang means a script the container runs; anything else is read-only config.
            info.mode = 0o755 if content.startswith("#!") else 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _last_logs(container: Container) -> str:
    try:
        raw = container.logs(stdout=True, stderr=True, tail=_LOG_LINES)
    except DockerException as e:
        return f"(logs unavailable: {e})"
    text = raw.decode(errors="replace").rstrip() if isinstance(raw, bytes) else str(raw)
    return text or "(no output)"


def _failure(container: Container, spec: ContainerSpec, reason: str) -> StackError:
    return StackError(
        f"container {spec.name} {reason}; its last {_LOG_LINES} log lines:\n{_last_logs(container)}"
    )


def _wait_ready(container: Container, spec: ContainerSpec) -> None:
    """Return once a service is healthy (running, without a check) or a job has exited 0."""
    deadline = time.monotonic() + spec.wait_timeout_s
    while True:
        container.reload()
        state = container.attrs["State"]
        status = state["Status"]
        if spec.job and status in ("exited", "dead"):
            if state["ExitCode"] == 0:
                return
            raise _failure(container, spec, f"(a job) exited with code {state['ExitCode']}")
        if not spec.job:
            # `restarting` before ever being ready is a crash loop: fail now, not at timeout.
            if status in ("exited", "dead", "restarting"):
                raise _failure(container, spec, f"stopped ({status}, exit {state['ExitCode']})")
            health = (state.get("Health") or {}).get("Status")
            if health == "healthy" or (spec.healthcheck is None and status == "running"):
                return
            if health == "unhealthy":
                raise _failure(container, spec, "turned unhealthy")
        if time.monotonic() > deadline:
            goal = "exited" if spec.job else "healthy"
            raise _failure(container, spec, f"not {goal} after {spec.wait_timeout_s} s ({status})")
        time.sleep(_POLL_S)


def run_container(client: docker.DockerClient, spec: ContainerSpec, log: Log = _stderr) -> str:
    """Create and start `spec`'s container, wait until it is ready; return its id.

    A container of the same name is replaced only if it belongs to the same stack. On failure
    the container is left in place (its logs are in the error; `destroy_stack` removes it).
    """
    owner = _owner(spec.labels, f"container {spec.name}")
    try:
        stale = client.containers.get(spec.name)
    except NotFound:
        stale = None
    except DockerException as e:
        raise StackError(f"container {spec.name}: {e}") from e
    if stale is not None:
        _check_ours(stale.labels, owner, f"container {spec.name}")
        log(f"removing stale container {spec.name}")
        remove_container(client, spec.name)
    _ensure_image(client, spec, log)
    log(f"creating {spec.name} ({spec.image})")
    try:
        container = client.containers.create(**_create_args(client, spec))
        if spec.uploads:
            container.put_archive("/", _upload_tar(spec.uploads))
        container.start()
    except DockerException as e:
        raise StackError(f"container {spec.name}: cannot create or start: {e}") from e
    started = time.monotonic()
    _wait_ready(container, spec)
    what = "exited 0" if spec.job else "healthy"
    log(f"{spec.name} {what} after {time.monotonic() - started:.1f} s")
    return str(container.id)


def _ensure_image(client: docker.DockerClient, spec: ContainerSpec, log: Log) -> None:
    """The spec's image, present in the engine: K2's own are built beforehand (never
    pulled); another (Grafana's) is pulled where a registry is reachable, else a clear error."""
    try:
        client.images.get(spec.image)
    except NotFound:
        pass
    else:
        return
    if spec.image.startswith(f"{K2_IMAGE_REPOSITORY}/"):
        raise StackError(
            f"container {spec.name}: K2's image {spec.image} is not built in this engine: "
            "run `k2-stack docker images build` (task docker:images)"
        )
    log(f"pulling {spec.image}")
    try:
        client.images.pull(spec.image)
    except DockerException as e:
        raise StackError(
            f"container {spec.name}: image {spec.image} is not in the engine and cannot be "
            f"pulled ({e}); where no registry is reachable, turn it off (k2:grafana=false)"
        ) from e


def remove_container(
    client: docker.DockerClient, name: str, stop_timeout_s: int = STOP_TIMEOUT_S
) -> None:
    """Stop (SIGTERM, then SIGKILL after the timeout) and remove a container; absent is fine."""
    try:
        container = client.containers.get(name)
        container.stop(timeout=stop_timeout_s)
        # v=True: anonymous volumes (an image's VOLUME) go with it; named ones stay.
        container.remove(v=True, force=True)
    except NotFound:
        return
    except DockerException as e:
        raise StackError(f"container {name}: cannot remove: {e}") from e


def _labelled(prefix: str) -> dict[str, str]:
    return {"label": f"{STACK_LABEL}={prefix}"}


def leftovers(client: docker.DockerClient, prefix: str) -> list[str]:
    """Every container, network and volume still labelled as part of stack `prefix`."""
    try:
        found = [
            f"container {c.name} ({c.status})"
            for c in client.containers.list(all=True, filters=_labelled(prefix))
        ]
        found += [f"network {n.name}" for n in client.networks.list(filters=_labelled(prefix))]
        found += [f"volume {v.name}" for v in client.volumes.list(filters=_labelled(prefix))]
    except DockerException as e:
        raise StackError(f"cannot list the objects of stack {prefix}: {e}") from e
    return found


def apply_stack(client: docker.DockerClient, stack: StackSpec, log: Log = _stderr) -> None:
    """Create the stack's network, volumes, then each container in order, each ready."""
    labels = {**stack.labels, STACK_LABEL: stack.prefix}
    ensure_network(client, stack.network, labels)
    for volume in stack.volumes:
        ensure_volume(client, volume, labels)
    ready: set[str] = set()
    for spec in stack.containers:
        if spec.labels.get(STACK_LABEL) != stack.prefix:
            raise StackError(f"container {spec.name} is not labelled {STACK_LABEL}={stack.prefix}")
        missing = [name for name in spec.depends_on if name not in ready]
        if missing:
            raise StackError(f"container {spec.name} comes before {', '.join(missing)}")
        run_container(client, spec, log)
        ready.add(spec.name)


def destroy_stack(client: docker.DockerClient, stack_prefix: str, log: Log = _stderr) -> None:
    """Remove everything labelled with the stack's prefix: containers, volumes, network."""
    try:
        containers = client.containers.list(all=True, filters=_labelled(stack_prefix))
        for container in containers:
            log(f"removing container {container.name}")
            remove_container(client, str(container.name))
        for volume in client.volumes.list(filters=_labelled(stack_prefix)):
            log(f"removing volume {volume.name}")
            remove_volume(client, str(volume.name))
        for network in client.networks.list(filters=_labelled(stack_prefix)):
            log(f"removing network {network.name}")
            remove_network(client, str(network.name))
    except DockerException as e:
        raise StackError(f"cannot destroy stack {stack_prefix}: {e}") from e
