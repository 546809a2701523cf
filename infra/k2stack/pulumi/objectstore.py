"""The S3 object store and its warehouse bucket.

SeaweedFS by default (`weed mini`, the same command the local backend runs, creates the
bucket itself); MinIO when a team standardised on it (a pinned maintained build named in
config); or an external S3 endpoint. For MinIO and external S3 a one-shot job running K2's
image creates the bucket (idempotently) before anything uses it.
"""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from k2stack.pulumi.config import ObjectStoreKind
from k2stack.pulumi.service import ContainerSpec, Deployment, container, pull, volume
from k2stack.topology import (
    LOOPBACK,
    SERVICES,
    WAREHOUSE_BUCKET,
    ServiceName,
)

SPEC = SERVICES[ServiceName.SEAWEEDFS]
SEAWEEDFS_ALIAS = SPEC.name.value
MINIO_ALIAS = "minio"
S3_PORT = SPEC.ports["s3"]

# Create the bucket unless it exists; boto3 is in K2's image.
BUCKET_JOB = (
    "import boto3, os\n"
    "s3 = boto3.client('s3', endpoint_url=os.environ['K2_S3_ENDPOINT'])\n"
    "names = [b['Name'] for b in s3.list_buckets().get('Buckets', [])]\n"
    f"'{WAREHOUSE_BUCKET}' in names or s3.create_bucket(Bucket='{WAREHOUSE_BUCKET}')\n"
)


def seaweedfs_command() -> list[str]:
    """`weed mini` on the topology's ports, listening on the container's interfaces."""
    p = SPEC.ports
    return [
        "mini",
        "-dir=/data",
        f"-ip={SEAWEEDFS_ALIAS}",
        "-ip.bind=0.0.0.0",
        f"-bucket={WAREHOUSE_BUCKET}",
        "-admin.ui=false",
        "-webdav.port=0",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        *(
            f"-{service}.port{'.grpc' if grpc else ''}={p[service + ('_grpc' if grpc else '')]}"
            for service in ("s3", "master", "volume", "filer", "admin")
            for grpc in (False, True)
            if service + ("_grpc" if grpc else "") in p
        ),
    ]


class ObjectStoreComponent(pulumi.ComponentResource):
    """Outputs `internal_endpoint` (S3 URL inside the network) and `ready` (to depend on)."""

    def __init__(
        self,
        name: str,
        deployment: Deployment,
        worker_image: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("k2:objectstore:ObjectStore", name, None, opts)
        config = deployment.config
        secrets = deployment.secrets
        creds = pulumi.Output.all(secrets.s3_access_key_id, secrets.s3_secret_access_key)
        self.alias: str | None = None
        self.server: docker.Container | None = None
        if config.object_store is ObjectStoreKind.SEAWEEDFS:
            self.alias = SEAWEEDFS_ALIAS
            self.server = container(
                deployment,
                spec=SPEC,
                image=pull(deployment, SPEC, self).image_id,
                container_spec=ContainerSpec(
                    service=SEAWEEDFS_ALIAS,
                    alias=SEAWEEDFS_ALIAS,
                    command=seaweedfs_command(),
                    envs=creds.apply(
                        lambda c: [f"AWS_ACCESS_KEY_ID={c[0]}", f"AWS_SECRET_ACCESS_KEY={c[1]}"]
                    ),
                    publish={S3_PORT: S3_PORT},
                    volumes={"/data": volume(deployment, "seaweedfs-data", self)},
                ),
                parent=self,
            )
        elif config.object_store is ObjectStoreKind.MINIO:
            self.alias = MINIO_ALIAS
            minio = SPEC.model_copy(
                update={"image": config.minio_image, "docker_health_tool": "curl"}
            )
            self.server = container(
                deployment,
                spec=minio,
                image=pull(deployment, minio, self).image_id,
                container_spec=ContainerSpec(
                    service=MINIO_ALIAS,
                    alias=MINIO_ALIAS,
                    command=["server", "/data", f"--address=:{S3_PORT}"],
                    envs=creds.apply(
                        lambda c: [f"MINIO_ROOT_USER={c[0]}", f"MINIO_ROOT_PASSWORD={c[1]}"]
                    ),
                    publish={S3_PORT: S3_PORT},
                    volumes={"/data": volume(deployment, "minio-data", self)},
                ),
                parent=self,
                healthcheck=[
                    "CMD",
                    "curl",
                    "-fsS",
                    "-o",
                    "/dev/null",
                    f"http://{LOOPBACK}:{S3_PORT}/minio/health/ready",
                ],
            )
        self.internal_endpoint: str = (
            f"http://{self.alias}:{S3_PORT}" if self.alias else str(config.external_s3_endpoint)
        )
        self.ready: pulumi.Resource | None = self.server
        if config.object_store is not ObjectStoreKind.SEAWEEDFS:
            self.ready = docker.Container(
                deployment.name("bucket-job"),
                name=deployment.name("bucket-job"),
                image=worker_image,
                command=["python", "-c", BUCKET_JOB],
                envs=creds.apply(
                    lambda c: [
                        f"K2_S3_ENDPOINT={self.internal_endpoint}",
                        f"AWS_ACCESS_KEY_ID={c[0]}",
                        f"AWS_SECRET_ACCESS_KEY={c[1]}",
                        "AWS_REGION=us-east-1",
                    ]
                ),
                networks_advanced=[
                    docker.ContainerNetworksAdvancedArgs(name=deployment.network_name)
                ],
                # A job: run to completion once; `attach` makes Pulumi wait for its exit.
                must_run=False,
                attach=True,
                restart="no",
                memory=256,
                privileged=False,
                labels=deployment.labels,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[self.server] if self.server else []
                ),
            )
        self.register_outputs({"internal_endpoint": self.internal_endpoint})
