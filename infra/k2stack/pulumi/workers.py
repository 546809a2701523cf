"""K2's own image (built from the repo's Dockerfile), the bootstrap job and the ingest workers.

The bootstrap job (`k2 bootstrap`: topics, subjects, namespaces, tables) runs to completion
before any worker starts; workers are identical replicas in one consumer group, sharing one
network alias that Prometheus resolves to every replica. Both get the same endpoints; with
Kafka SCRAM on, the job authenticates as the admin principal (it creates topics) and the
workers as the ingest principal.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata

import pulumi
import pulumi_docker as docker

from k2stack.observability import INFRA_DIR, WORKER_METRICS_PATH, WORKER_METRICS_PORT
from k2stack.pulumi.monitoring import WORKER_ALIAS
from k2stack.pulumi.service import ContainerSpec, Deployment, container
from k2stack.topology import LOOPBACK, DockerOnlySpec, Probe

REPO_ROOT = INFRA_DIR.parent
DOCKERFILE = REPO_ROOT / "Dockerfile"
IMAGE_REPOSITORY = "k2/ingest-worker"
WORKER_COMMAND = ("k2", "ingest", "run")
BOOTSTRAP_COMMAND = ("k2", "bootstrap")


def k2_version() -> str:
    try:
        return metadata.version("k2")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0.0.0-dev"


WORKER = DockerOnlySpec(
    name=WORKER_ALIAS,
    description="K2 ingest worker: Kafka to Iceberg",
    version=k2_version(),
    image=f"{IMAGE_REPOSITORY}:{k2_version()}",
    ports={"metrics": WORKER_METRICS_PORT},
    health=Probe(kind="http", port="metrics", path=WORKER_METRICS_PATH, timeout_s=120),
    memory_mb=1024,
)

# The image is Python-only: no wget or curl, so the probe runs through the interpreter.
WORKER_HEALTHCHECK = [
    "CMD",
    "python",
    "-c",
    "import urllib.request; urllib.request.urlopen("
    f"'http://{LOOPBACK}:{WORKER_METRICS_PORT}{WORKER_METRICS_PATH}', timeout=4)",
]


class WorkerImageComponent(pulumi.ComponentResource):
    """K2's image, built locally from the Dockerfile and never pushed."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("k2:workers:Image", name, None, opts)
        self.image = docker.Image(
            "k2-image",
            image_name=WORKER.image,
            build=docker.DockerBuildArgs(
                context=str(REPO_ROOT), dockerfile=str(DOCKERFILE), platform="linux/amd64"
            ),
            skip_push=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.image_name: pulumi.Output[str] = self.image.image_name
        self.register_outputs({"image_name": self.image_name})


class WorkersComponent(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        deployment: Deployment,
        *,
        image: pulumi.Input[str],
        env: pulumi.Input[Sequence[pulumi.Input[str]]],
        bootstrap_env: pulumi.Input[Sequence[pulumi.Input[str]]],
        depends_on: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("k2:workers:Workers", name, None, opts)
        self.bootstrap = docker.Container(
            deployment.name("bootstrap"),
            name=deployment.name("bootstrap"),
            image=image,
            command=list(BOOTSTRAP_COMMAND),
            envs=bootstrap_env,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=deployment.network_name)],
            # A job: run once to completion; `attach` makes Pulumi wait for it to exit.
            must_run=False,
            attach=True,
            restart="no",
            memory=512,
            privileged=False,
            labels=deployment.labels,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )
        self.workers = [
            container(
                deployment,
                spec=WORKER,
                image=image,
                container_spec=ContainerSpec(
                    service=f"{WORKER_ALIAS}-{index}",
                    alias=f"{WORKER_ALIAS}-{index}",
                    aliases=(WORKER_ALIAS,),
                    command=WORKER_COMMAND,
                    envs=env,
                ),
                parent=self,
                depends_on=[self.bootstrap],
                healthcheck=WORKER_HEALTHCHECK,
            )
            for index in range(deployment.config.worker_replicas)
        ]
        self.register_outputs({"replicas": len(self.workers)})
