"""`task test:docker`: the integration and reliability suites against a real Docker stack.

The stack is an ephemeral `ci-<id>` Pulumi stack brought up by the real Pulumi engine
(Automation API, `k2stack.pulumi.automation`) from Pulumi.ci.yaml with generated secrets, on
K2's own images and a Docker engine K2 finds or starts. The tests then run on the host with the
stack's `K2_*` outputs (it publishes on loopback at a free block of ports), plus the Docker-only
faults (`tests/docker`: kill -9 of a worker container, a Kafka container restart). Afterwards
the stack is destroyed and nothing may be left that carries its label; an engine K2 started
for the run is stopped again and what it changed on the host undone.

Where no engine can be had, this fails loudly (exit 1, with the reason); it never passes by
running nothing.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import docker

from k2.errors import K2Error
from k2stack.observability import INFRA_DIR

REPO_ROOT = INFRA_DIR.parent
STACK_PREFIX_ENV = "K2_DOCKER_STACK_PREFIX"
DOCKER_HOST_ENV = "DOCKER_HOST"
# What runs against the Docker stack, in two phases. First, in parallel: everything that uses
# a stack through K2_* except what tests the local backend itself (marker local_stack), plus
# the tests of the engine, images and Pulumi engine (docker). Heavy tests of
# backend-independent logic ran in test:local already (marker heavy). Then, alone: the Docker
# stack's own tests (docker_stack), whose faults restart the stack's Kafka container: run
# beside the others, that restart broke whatever else was using Kafka at that moment, and the
# fault itself was judged on a machine the other tests kept saturated.
SHARED_MARKERS = "(integration or reliability or docker) and not docker_stack and not local_stack"
PHASES = (f"({SHARED_MARKERS}) and not heavy", "docker_stack and not local_stack and not heavy")
NO_TESTS_COLLECTED = 5  # pytest's exit status when a phase's selection is empty


def _say(message: str) -> None:
    print(f"[k2 test:docker] {message}", file=sys.stderr, flush=True)


def run(pytest_args: Sequence[str], workers: int) -> int:
    """Bring the ci stack up, run the suites against it, destroy it; pytest's exit status."""
    from k2stack.docker.base_image import ensure_base_image
    from k2stack.docker.engine import DockerEngine
    from k2stack.docker.images import build_images
    from k2stack.local.context import default_cache_dir
    from k2stack.pulumi.cli_install import ensure_pulumi_cli
    from k2stack.pulumi.stacks import up_committed

    began = time.monotonic()
    manager = DockerEngine()
    try:
        ours = manager.find() is None
        engine = manager.ensure()
        client = engine.client()
    except K2Error as e:
        # Loud, and a failure: a machine without an engine must not pass by testing nothing.
        _say(f"FAILED: no Docker engine can be had here, so the Docker suite cannot run: {e}")
        return 1
    _say(f"engine: {engine.url} ({'started by K2' if ours else 'already running'})")
    run_id = secrets.token_hex(4)
    stack_name = f"ci-{run_id}"
    code = 1
    try:
        build_images(client, ensure_base_image(client), log=_say)
        _say(f"images ready after {time.monotonic() - began:.0f}s")
        ensure_pulumi_cli(default_cache_dir())
        _say(f"Pulumi CLI ready after {time.monotonic() - began:.0f}s; pulumi up {stack_name}")
        up_began = time.monotonic()
        _, outputs = up_committed("ci", run_id)
        _say(f"stack {stack_name} up in {time.monotonic() - up_began:.0f}s")
        env = {
            **os.environ,
            **{k: v for k, v in outputs.items() if k.startswith("K2_")},
            STACK_PREFIX_ENV: stack_name,
            DOCKER_HOST_ENV: engine.url,
        }
        code = _run_phases(pytest_args, workers, env)
    except K2Error as e:
        _say(f"error: {e}")
    finally:
        code = _teardown(stack_name, client, code)
        if ours:
            report = manager.stop()
            _say(f"engine stopped; {report}")
    _say(f"done in {time.monotonic() - began:.0f}s (exit {code})")
    return code


def _run_phases(pytest_args: Sequence[str], workers: int, env: dict[str, str]) -> int:
    """Each phase's pytest in turn (the second alone, one worker); the first failure's status.

    A phase whose selection is empty (a path given on the command line) counts as passed,
    unless both are: then nothing ran, and that is a failure.
    """
    codes = []
    for markers, n in zip(PHASES, (workers, 1), strict=True):
        argv = [
            str(Path(sys.executable).with_name("pytest")),
            "-n",
            str(n),
            "--dist",
            "loadgroup",
            "-m",
            markers,
            *pytest_args,
        ]
        _say(f"pytest -m {markers!r} with {n} worker(s)")
        codes.append(subprocess.call(argv, cwd=REPO_ROOT, env=env))
    ran = [code for code in codes if code != NO_TESTS_COLLECTED]
    if not ran:
        return NO_TESTS_COLLECTED
    return next((code for code in ran if code != 0), 0)


def _teardown(stack_name: str, client: docker.DockerClient, code: int) -> int:
    from k2stack.docker.apply import leftovers
    from k2stack.pulumi import automation

    try:
        automation.destroy(stack_name)
    except K2Error as e:
        _say(f"destroy failed: {e}")
        return code or 1
    left = leftovers(client, stack_name)
    if left:
        _say("left behind after destroy: " + ", ".join(left))
        return code or 1
    _say(f"stack {stack_name} destroyed; nothing left (containers, networks, volumes)")
    return code


def main() -> None:
    workers = int(os.environ.get("K2_TEST_WORKERS", "3"))
    raise SystemExit(run(sys.argv[1:], workers))


if __name__ == "__main__":
    main()
