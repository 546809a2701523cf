"""Small container specs on K2's local base image, shared by the real-engine tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping

from k2stack.docker.base_image import BASE_IMAGE_VAR, K2_BASE_IMAGE
from k2stack.docker.spec import STACK_LABEL, ContainerSpec, Healthcheck

# The base image `task test:docker` builds (or takes from K2_DOCKER_BASE_IMAGE) before any
# test runs. Not a hand-made tag: a cold engine has only what K2 builds.
BASE_IMAGE = os.environ.get(BASE_IMAGE_VAR) or K2_BASE_IMAGE
# PID 1 ignores SIGTERM unless it traps it: without the trap every stop would wait out the
# whole stop timeout.
SERVICE_SCRIPT = "trap 'exit 0' TERM; touch /tmp/ready; sleep 600 & wait"
READY_CHECK = Healthcheck(
    test=("CMD", "test", "-f", "/tmp/ready"),
    interval_s=1,
    timeout_s=5,
    start_period_s=0,
    retries=3,
)


def new_prefix() -> str:
    """A unique stack prefix per test, so concurrent runs never share objects."""
    return f"k2t-{uuid.uuid4().hex[:8]}"


def container(
    prefix: str,
    service: str,
    script: str,
    *,
    job: bool = False,
    env: Mapping[str, str] | None = None,
    **fields: object,
) -> ContainerSpec:
    """A container of stack `prefix` running `sh -c script` on the base image."""
    values: dict[str, object] = {
        "name": f"{prefix}-{service}",
        "service": service,
        "image": BASE_IMAGE,
        "command": ("sh", "-c", script),
        "env": dict(env or {}),
        "network": f"{prefix}-net",
        "hostname": service,
        "aliases": (service,),
        "healthcheck": None if job else READY_CHECK,
        "memory_mb": 64,
        "job": job,
        "labels": {STACK_LABEL: prefix},
        "wait_timeout_s": 60,
        **fields,
    }
    return ContainerSpec.model_validate(values)
