"""The Apache Iceberg REST catalog as one native JVM: JDBC catalog on PostgreSQL, S3 on SeaweedFS.

Iceberg publishes no runnable jar of its REST fixture server (`RESTCatalogServer`, what the
`apache/iceberg-rest-fixture` image runs), so the classpath is assembled from Maven Central
(`maven/iceberg-rest.xml`). The fixture listens on every interface and has no host option, so
we start it through a small wrapper (`java/LoopbackRESTCatalogServer.java`, compiled once into
the cache) that runs Iceberg's own catalog set-up and binds Jetty to 127.0.0.1 only. The same
wrapper puts authentication in front of every route (`java/CatalogAuthFilter.java`: the Iceberg
REST spec's OAuth2 client-credentials flow, bearer tokens, least-privilege principals).

The catalog is configured by the fixture's `CATALOG_*` environment variables (`__` becomes
`-`, `_` becomes `.`), exactly as the Docker image is; its principals by `K2_CATALOG_AUTH_*`
(`k2stack.catalog_auth`).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from k2.errors import StackError
from k2.settings import S3_REGION
from k2stack import catalog_auth
from k2stack.local.context import StackContext
from k2stack.local.install import java_executable, maven_classpath, run_step
from k2stack.local.launcher import LaunchCommand, Launcher
from k2stack.topology import (
    CATALOG_DATABASE,
    POSTGRES_USER,
    SERVICES,
    WAREHOUSE_BUCKET,
    ServiceName,
)

ICEBERG_REST = ServiceName.ICEBERG_REST
_LOCAL = Path(__file__).resolve().parent.parent
POM = _LOCAL / "maven" / "iceberg-rest.xml"
JAVA_DIR = _LOCAL / "java"
WRAPPER_SOURCE = JAVA_DIR / "LoopbackRESTCatalogServer.java"
WRAPPER_MAIN = "dev.k2.stack.LoopbackRESTCatalogServer"

# The fixture logs its whole property map ("Creating ... catalog with properties") at INFO,
# JDBC password and S3 secret key included: keep that logger at WARN so secrets never reach
# the log file.
_QUIET_LOGGERS = ("org.apache.iceberg.rest.RESTCatalogServer",)


def catalog_env(ctx: StackContext) -> dict[str, str]:
    """The server's whole configuration, as the fixture's `CATALOG_*` environment variables."""
    creds = ctx.credentials
    return {
        **SERVICES[ICEBERG_REST].env,
        "CATALOG_URI": (
            f"jdbc:postgresql://{ctx.address(ServiceName.POSTGRES, 'sql')}/{CATALOG_DATABASE}"
        ),
        "CATALOG_JDBC_USER": POSTGRES_USER,
        "CATALOG_JDBC_PASSWORD": creds.postgres_password,
        "CATALOG_WAREHOUSE": f"s3://{WAREHOUSE_BUCKET}/",
        "CATALOG_IO__IMPL": "org.apache.iceberg.aws.s3.S3FileIO",
        "CATALOG_S3_ENDPOINT": f"http://{ctx.address(ServiceName.SEAWEEDFS, 's3')}",
        "CATALOG_S3_PATH__STYLE__ACCESS": "true",
        "CATALOG_S3_ACCESS__KEY__ID": creds.s3_access_key_id,
        "CATALOG_S3_SECRET__ACCESS__KEY": creds.s3_secret_access_key,
        "CATALOG_CLIENT_REGION": S3_REGION,
        # The AWS SDK resolves a region before it reads Iceberg's client.region.
        "AWS_REGION": S3_REGION,
        "CATALOG_REST_PORT": str(ctx.port(ICEBERG_REST, "http")),
        **catalog_auth.server_env(creds),
    }


def compile_wrapper(cache_dir: Path, classpath: Path) -> Path:
    """Compile the wrapper (every `java/*.java`) against the resolved classpath, once; return
    its classes dir.

    Keyed by the sources and the classpath directory (itself keyed by the pom), so a change to
    either recompiles. Compiled into a temporary directory and renamed into place, so a failed
    or interrupted compile is never mistaken for a good one.
    """
    sources = sorted(JAVA_DIR.glob("*.java"))
    text = "\0".join(f"{path.name}\0{path.read_text()}" for path in sources)
    digest = hashlib.sha256(f"{text}\0{classpath.name}".encode()).hexdigest()[:12]
    target = cache_dir / "java" / f"iceberg-rest-wrapper-{digest}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    javac = Path(java_executable()).with_name("javac")
    if not javac.is_file():
        raise StackError(f"iceberg-rest: no javac beside {java_executable()}: install a JDK 17+")
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        run_step(
            [
                str(javac),
                "-nowarn",
                "-d",
                str(staging),
                "-cp",
                f"{classpath}/*",
                *(str(path) for path in sources),
            ],
            f"compiling {', '.join(path.name for path in sources)}",
        )
        # mkdtemp makes it 0700: readable by every user that runs the catalog (K2's image
        # copies it for an unprivileged user).
        staging.chmod(0o755)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # else another process compiled the same sources first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class IcebergRestLauncher(Launcher):
    """Iceberg's REST fixture server, bound to 127.0.0.1, storing its catalog in PostgreSQL."""

    spec = SERVICES[ICEBERG_REST]

    def install(self, ctx: StackContext) -> None:
        compile_wrapper(ctx.cache_dir, self._classpath(ctx))

    def artifacts(self, ctx: StackContext) -> tuple[Path, ...]:
        classpath = self._classpath(ctx)
        return (classpath, compile_wrapper(ctx.cache_dir, classpath))

    def prepare(self, ctx: StackContext) -> None:
        self._tmp_dir(ctx).mkdir(parents=True, exist_ok=True)

    def command(self, ctx: StackContext) -> LaunchCommand:
        classpath = self._classpath(ctx)
        classes = compile_wrapper(ctx.cache_dir, classpath)
        quiet = tuple(f"-Dorg.slf4j.simpleLogger.log.{name}=warn" for name in _QUIET_LOGGERS)
        return LaunchCommand(
            argv=(
                java_executable(),
                f"-Xmx{self.spec.memory_mb}m",
                # A small request/response server: the serial collector keeps the footprint
                # (and the CPU share on a 2-core machine) low.
                "-XX:+UseSerialGC",
                "-XX:+ExitOnOutOfMemoryError",
                "-Djava.awt.headless=true",
                # A plain IPv4 socket on 127.0.0.1, not an IPv4-mapped IPv6 one.
                "-Djava.net.preferIPv4Stack=true",
                f"-Dk2.rest.host={ctx.bind_host}",
                f"-Djava.io.tmpdir={self._tmp_dir(ctx)}",
                # slf4j-simple: everything to stdout (the supervisor's log file), timestamped.
                "-Dorg.slf4j.simpleLogger.logFile=System.out",
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ",
                *quiet,
                "-cp",
                f"{classes}:{classpath}/*",
                WRAPPER_MAIN,
            ),
            env=catalog_env(ctx),
            cwd=ctx.service_dir(ICEBERG_REST),
        )

    def _classpath(self, ctx: StackContext) -> Path:
        return maven_classpath(ctx.cache_dir, f"iceberg-rest-{self.spec.version}", POM)

    def _tmp_dir(self, ctx: StackContext) -> Path:
        return ctx.service_dir(ICEBERG_REST) / "tmp"
