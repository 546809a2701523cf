"""Apache Kafka 4.x in KRaft mode as one native process: broker and controller on 127.0.0.1.

A single node has to serve consumer groups and transactions, so every internal topic
(offsets, transaction state, share-coordinator state) is created at replication factor 1
with a minimum ISR of 1: with Kafka's defaults (3 and 2) the coordinators never come up and
`init_transactions` times out.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path

from k2.errors import StackError
from k2stack import kafka_security as sasl
from k2stack.local.context import KafkaListener, KafkaNode, StackContext
from k2stack.local.install import java_executable, maven_classpath
from k2stack.local.launcher import LaunchCommand, Launcher
from k2stack.topology import LOOPBACK, SERVICES, ServiceName

KAFKA = ServiceName.KAFKA
POM = Path(__file__).resolve().parent.parent / "maven" / "kafka.xml"

# Checked against kafka_2.13-4.4.0.jar: both classes are in it.
SERVER_MAIN = "kafka.Kafka"
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"

NODE_ID = 1
# Partitions of a topic created without an explicit count (auto-creation is off).
DEFAULT_PARTITIONS = 3
# Kafka's default is 50 each; on a 2-core laptop creating 50 partitions delays the first
# consumer group and the first transaction by seconds, and one node gains nothing from them.
INTERNAL_TOPIC_PARTITIONS = 10
STORAGE_TOOL_HEAP_MB = 256
STORAGE_TOOL_TIMEOUT_S = 120.0

SERVER_PROPERTIES = "server.properties"
LOG4J2_PROPERTIES = "log4j2.properties"
CLUSTER_ID_FILE = "cluster.id"
META_PROPERTIES = "meta.properties"

# Everything to stdout (the supervisor sends stdout to the service's log file); the loggers
# Kafka's own distribution quiets are quieted here too. log4j2's shutdown hook is off: it
# races Kafka's and cut the log before the broker's last "shutdown completed" lines.
LOG4J2_CONFIG = """\
status = warn
name = k2-kafka
shutdownHook = disable

appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.target = SYSTEM_OUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n

rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT

logger.zookeeper.name = org.apache.zookeeper
logger.zookeeper.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
"""


def new_cluster_id() -> str:
    """A KRaft cluster id, as `kafka-storage random-uuid` makes it.

    Kafka's `Uuid.randomUuid()` is a random (v4) UUID in unpadded URL-safe base64 that never
    starts with '-', so it cannot be mistaken for a command-line flag.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def local_node(ctx: StackContext) -> KafkaNode:
    """The local stack's one node: broker and controller on loopback at the stack's ports."""
    controller = ctx.port(KAFKA, "controller")
    return KafkaNode(
        node_id=NODE_ID,
        voters=((NODE_ID, LOOPBACK, controller),),
        listeners=(KafkaListener("PLAINTEXT", ctx.port(KAFKA, "broker"), LOOPBACK),),
        controller_port=controller,
    )


def kafka_node(ctx: StackContext) -> KafkaNode:
    return ctx.kafka or local_node(ctx)


def server_properties(ctx: StackContext) -> dict[str, str]:
    """The broker+controller configuration of this node (combined roles)."""
    node = kafka_node(ctx)
    bind = ctx.bind_host
    listeners = [f"{lst.name}://{bind}:{lst.port}" for lst in node.listeners]
    advertised = [f"{lst.name}://{lst.advertised_host}:{lst.port}" for lst in node.listeners]
    client_protocol = sasl.PROTOCOL if node.scram_passwords else "PLAINTEXT"
    protocols = [f"{lst.name}:{client_protocol}" for lst in node.listeners]
    replication = str(node.replication_factor)
    min_isr = str(node.min_insync_replicas)
    security = (
        sasl.broker_properties(
            tuple(lst.name for lst in node.listeners), node.scram_passwords[sasl.ADMIN.user]
        )
        if node.scram_passwords
        else {}
    )
    return {
        **security,
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": ",".join(
            f"{node_id}@{host}:{port}" for node_id, host, port in node.voters
        ),
        "listeners": ",".join([*listeners, f"CONTROLLER://{bind}:{node.controller_port}"]),
        "advertised.listeners": ",".join(advertised),
        "listener.security.protocol.map": ",".join([*protocols, "CONTROLLER:PLAINTEXT"]),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": node.listeners[0].name,
        "log.dirs": str(ctx.data_dir(KAFKA)),
        "num.partitions": str(DEFAULT_PARTITIONS),
        "default.replication.factor": replication,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replication,
        "offsets.topic.num.partitions": str(INTERNAL_TOPIC_PARTITIONS),
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": str(INTERNAL_TOPIC_PARTITIONS),
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
        # Tests and the demo start one consumer at a time: waiting 3 s for more is pure delay.
        "group.initial.rebalance.delay.ms": "0",
        # Topics come from the contracts catalogue; a typo must fail, not create a topic.
        "auto.create.topics.enable": "false",
    }


def render_properties(values: Mapping[str, str]) -> str:
    """A Java properties file (values here hold no characters that need escaping but '\\')."""
    lines = [f"{key}={value.replace(chr(92), chr(92) * 2)}" for key, value in values.items()]
    return "# Written by k2stack on every start: edit k2stack.local.services.kafka instead.\n" + (
        "\n".join(lines) + "\n"
    )


def read_properties(path: Path) -> dict[str, str]:
    """The key=value lines of a simple properties file (Kafka's meta.properties)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = value.strip()
    return out


class KafkaLauncher(Launcher):
    """Kafka's official jars from Maven Central, run as `kafka.Kafka server.properties`."""

    spec = SERVICES[KAFKA]

    def install(self, ctx: StackContext) -> None:
        self._classpath(ctx)

    def artifacts(self, ctx: StackContext) -> tuple[Path, ...]:
        return (self._classpath(ctx),)

    def prepare(self, ctx: StackContext) -> None:
        service_dir = ctx.service_dir(KAFKA)
        data_dir = ctx.data_dir(KAFKA)
        for directory in (service_dir, data_dir, self._tmp_dir(ctx)):
            directory.mkdir(parents=True, exist_ok=True)
        properties = service_dir / SERVER_PROPERTIES
        properties.write_text(render_properties(server_properties(ctx)))
        # With SCRAM it holds the broker's own password (its JAAS login): owner only.
        properties.chmod(0o600)
        (service_dir / LOG4J2_PROPERTIES).write_text(LOG4J2_CONFIG)
        cluster_id = self._cluster_id(ctx)
        meta = data_dir / META_PROPERTIES
        if meta.is_file():
            # Formatted before: a JVM start saved on every `stack:up`, but only if it is ours.
            formatted_id = read_properties(meta).get("cluster.id")
            if formatted_id != cluster_id:
                raise StackError(
                    f"kafka: {data_dir} was formatted for cluster {formatted_id!r}, but "
                    f"{service_dir / CLUSTER_ID_FILE} says {cluster_id!r}; purge the stack"
                )
            return
        self._format_storage(ctx, cluster_id)

    def command(self, ctx: StackContext) -> LaunchCommand:
        service_dir = ctx.service_dir(KAFKA)
        return LaunchCommand(
            argv=(
                *self._java(ctx, heap_mb=ctx.heap_mb(KAFKA)),
                # Kafka's own launcher script defaults: short GC pauses for a latency service.
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-XX:InitiatingHeapOccupancyPercent=35",
                "-XX:+ExplicitGCInvokesConcurrent",
                SERVER_MAIN,
                str(service_dir / SERVER_PROPERTIES),
            ),
            cwd=service_dir,
        )

    def _classpath(self, ctx: StackContext) -> Path:
        return maven_classpath(ctx.cache_dir, f"kafka-{self.spec.version}", POM)

    def _tmp_dir(self, ctx: StackContext) -> Path:
        return ctx.service_dir(KAFKA) / "tmp"

    def _java(self, ctx: StackContext, heap_mb: int) -> tuple[str, ...]:
        """`java` with the flags every Kafka JVM of the stack gets, up to the classpath."""
        service_dir = ctx.service_dir(KAFKA)
        return (
            java_executable(),
            f"-Xmx{heap_mb}m",
            # Die on OOM so the supervisor sees a dead process, not a half-working broker.
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            # Without it the JVM listens on IPv6 sockets (as [::ffff:127.0.0.1]); IPv4 sockets
            # make "bound to 127.0.0.1 only" plain to see and to test.
            "-Djava.net.preferIPv4Stack=true",
            # Native libraries (snappy, zstd) unpack here; keeps the stack's files together
            # and lets `stack:down --purge` remove them.
            f"-Djava.io.tmpdir={self._tmp_dir(ctx)}",
            f"-Dlog4j2.configurationFile={service_dir / LOG4J2_PROPERTIES}",
            "-cp",
            f"{self._classpath(ctx)}/*",
        )

    def _cluster_id(self, ctx: StackContext) -> str:
        """The stack's cluster id, made once and kept beside the data it formatted."""
        path = ctx.service_dir(KAFKA) / CLUSTER_ID_FILE
        if path.is_file():
            return path.read_text().strip()
        # Every node of a multi-node cluster must format with the same id: it is given.
        cluster_id = kafka_node(ctx).cluster_id or new_cluster_id()
        path.write_text(cluster_id + "\n")
        return cluster_id

    def _format_storage(self, ctx: StackContext, cluster_id: str) -> None:
        service_dir = ctx.service_dir(KAFKA)
        argv = [
            *self._java(ctx, heap_mb=STORAGE_TOOL_HEAP_MB),
            STORAGE_TOOL_MAIN,
            "format",
            "--cluster-id",
            cluster_id,
            "--config",
            str(service_dir / SERVER_PROPERTIES),
            "--ignore-formatted",
            # The SCRAM credentials live in the metadata log: created at format time.
            *sasl.format_arguments(kafka_node(ctx).scram_passwords or {}),
        ]
        try:
            result = subprocess.run(
                argv,
                cwd=service_dir,
                capture_output=True,
                text=True,
                timeout=STORAGE_TOOL_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            # Not `{e}`: a timeout's message repeats the command line, SCRAM passwords included.
            raise StackError(
                f"kafka: formatting storage in {ctx.data_dir(KAFKA)} failed: {type(e).__name__}"
            ) from e
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()[-2000:]
            raise StackError(
                f"kafka: {STORAGE_TOOL_MAIN} format exited with {result.returncode}:\n{output}"
            )
