"""Kafka SASL/SCRAM-SHA-512 with ACLs (`k2:kafkaSecurity: scram`): principals and settings.

What changes on a broker when SCRAM is on:

- Client listeners (INTERNAL for containers, EXTERNAL for the host) and inter-broker traffic
  (INTERNAL) become SASL_PLAINTEXT with SCRAM-SHA-512; brokers talk to each other as the admin
  principal.
- The KRaft CONTROLLER listener stays PLAINTEXT. SCRAM credentials live in the metadata log
  that the controllers themselves serve, so Kafka does not support SCRAM on the controller
  listener; the port is never published and only reachable on the stack's private bridge
  network. Brokers reach the controllers there as User:ANONYMOUS, which must therefore be a
  super user (a controller refuses broker registration and heartbeats otherwise, and ACLs
  cannot grant it before the quorum is up). No client listener accepts ANONYMOUS: every one
  of them requires SASL. On an untrusted network, move the controller listener to
  SASL_PLAINTEXT with PLAIN (static JAAS credentials) or to SSL.
- StandardAuthorizer (KRaft's ACL store), super.users = the admin principal (plus ANONYMOUS
  as above); nothing is allowed without an ACL.
- SCRAM credentials are written into the metadata log when the storage is formatted
  (`kafka-storage format --add-scram`). The apache/kafka image formats storage in its own
  start script without a way to pass `--add-scram`, so the broker's command formats first,
  from a properties file derived from the very `KAFKA_*` variables the image turns into
  server.properties, then hands over to the image's start script (which then finds the
  storage already formatted, a case it accepts).

Passwords reach containers only through (secret) environment variables; commands and
uploaded files reference them as `$VARIABLE`, so no password appears in a plain input.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from k2.settings import KAFKA_ENV_PREFIX, KafkaClientSecurity
from k2stack.topology import SERVICES, ServiceName, docker_healthcheck

MECHANISM = "SCRAM-SHA-512"
PROTOCOL = "SASL_PLAINTEXT"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
SCRAM_LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
# The principal brokers use on the PLAINTEXT controller listener (see the module docstring).
CONTROLLER_PRINCIPAL = "User:ANONYMOUS"

# Where the broker's format-time properties are uploaded (not /mnt/shared/config: the image
# would take a server.properties there as its base config).
FORMAT_PROPERTIES = "/etc/kafka/k2/format.properties"
DATA_DIR = "/var/lib/kafka/data"
RUN_SCRIPT = "/etc/kafka/docker/run"
STORAGE_TOOL = "/opt/kafka/bin/kafka-storage.sh"
CLIENT_PROPERTIES = "/tmp/k2-client.properties"  # written inside a container, mode 600

# KAFKA_* variables the image does not turn into server properties (KafkaDockerWrapper).
IMAGE_EXCLUDED_ENV = frozenset(
    {
        "KAFKA_VERSION",
        "KAFKA_HEAP_OPTS",
        "KAFKA_LOG4J_OPTS",
        "KAFKA_OPTS",
        "KAFKA_JMX_OPTS",
        "KAFKA_JVM_PERFORMANCE_OPTS",
        "KAFKA_GC_LOG_OPTS",
        "KAFKA_LOG4J_ROOT_LOGLEVEL",
        "KAFKA_LOG4J_LOGGERS",
        "KAFKA_TOOLS_LOG4J_LOGLEVEL",
        "KAFKA_JMX_HOSTNAME",
    }
)


@dataclass(frozen=True)
class Principal:
    """A SCRAM user: its name and the stack config key holding its password (a secret)."""

    user: str
    config_key: str

    @property
    def acl_principal(self) -> str:
        return f"User:{self.user}"

    @property
    def password_env(self) -> str:
        """The variable that carries the password inside Kafka containers."""
        return "K2_SCRAM_PASSWORD_" + self.user.upper().replace("-", "_")


ADMIN = Principal("k2-admin", "kafkaAdminPassword")  # brokers, ACL job, bootstrap, operators
INGEST = Principal("k2-ingest", "kafkaIngestPassword")  # ingest workers
PRODUCER = Principal("k2-producer", "kafkaProducerPassword")  # feed handlers / replay
PRINCIPALS = (ADMIN, INGEST, PRODUCER)


def env_name(prop: str) -> str:
    """The apache/kafka image's variable for a server property (`-` is `___`, `_` is `__`)."""
    return "KAFKA_" + prop.replace("_", "__").replace("-", "___").replace(".", "_").upper()


def prop_name(env: str) -> str:
    """The server property the image derives from a `KAFKA_*` variable (its exact rule)."""
    key = env.removeprefix("KAFKA_").lower().replace("_", ".")
    return key.replace("...", "-").replace("..", "_")


def jaas(principal: Principal, password: str) -> str:
    return f'{SCRAM_LOGIN_MODULE} required username="{principal.user}" password="{password}";'


def listener_jaas_env(listener: str) -> str:
    return env_name(f"listener.name.{listener.lower()}.{MECHANISM.lower()}.sasl.jaas.config")


def broker_settings() -> list[str]:
    """The SASL/ACL settings added to every broker (no secrets: also used at format time)."""
    return [
        f"KAFKA_SASL_ENABLED_MECHANISMS={MECHANISM}",
        f"KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL={MECHANISM}",
        # EXTERNAL only verifies clients against the SCRAM credentials in the metadata log.
        f"{listener_jaas_env('EXTERNAL')}={SCRAM_LOGIN_MODULE} required;",
        f"KAFKA_AUTHORIZER_CLASS_NAME={AUTHORIZER}",
        f"KAFKA_SUPER_USERS={ADMIN.acl_principal};{CONTROLLER_PRINCIPAL}",
        "KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND=false",
        # The image's configure script exits when a SASL listener is advertised and
        # KAFKA_OPTS is unset; JAAS comes per listener (sasl.jaas.config), not from a file.
        "KAFKA_OPTS=-Dk2.kafka.jaas=per-listener",
    ]


def broker_secret_env(passwords: Mapping[str, str]) -> list[str]:
    """The brokers' own login and every principal's password; `passwords` by config key."""
    return [
        # INTERNAL carries inter-broker traffic: its JAAS entry is also the brokers' login.
        f"{listener_jaas_env('INTERNAL')}={jaas(ADMIN, passwords[ADMIN.config_key])}",
        *password_env(passwords),
    ]


def password_env(passwords: Mapping[str, str]) -> list[str]:
    """`K2_SCRAM_PASSWORD_<USER>=...` for each principal; `passwords` is keyed by config key."""
    return [f"{p.password_env}={passwords[p.config_key]}" for p in PRINCIPALS]


def format_properties(env: Sequence[str]) -> str:
    """The server properties the image would generate from `env`, minus JAAS (secrets).

    Enough for `kafka-storage format` to validate the node's KRaft settings exactly as the
    image will start it.
    """
    lines = []
    for line in env:
        name, _, value = line.partition("=")
        if not name.startswith("KAFKA_") or name in IMAGE_EXCLUDED_ENV:
            continue
        prop = prop_name(name)
        if prop.endswith("sasl.jaas.config"):
            continue
        lines.append(f"{prop}={value}")
    return "\n".join(sorted(lines)) + "\n"


def broker_command() -> list[str]:
    """Format the storage with every principal's SCRAM credential, then run the image."""
    scram = " ".join(
        f'--add-scram "{MECHANISM}=[name={p.user},password=${p.password_env}]"' for p in PRINCIPALS
    )
    script = (
        "set -e\n"
        f'{STORAGE_TOOL} format --ignore-formatted --cluster-id "$CLUSTER_ID" '
        # stdout lists the SCRAM records (salted keys): keep them out of the container log.
        f"--config {FORMAT_PROPERTIES} {scram} > /dev/null\n"
        'echo "===> k2: storage formatted with the SCRAM credentials (or already formatted)"\n'
        f"exec {RUN_SCRIPT}\n"
    )
    return ["sh", "-c", script]


def client_properties_script(principal: Principal, path: str = CLIENT_PROPERTIES) -> str:
    """Shell that writes an admin-client properties file from the principal's password env."""
    template = (
        f"security.protocol={PROTOCOL}\\n"
        f"sasl.mechanism={MECHANISM}\\n"
        f'sasl.jaas.config={SCRAM_LOGIN_MODULE} required username="{principal.user}" '
        'password="%s";\\n'
    )
    return f"umask 077 && printf '{template}' \"${principal.password_env}\" > {path}"


def broker_healthcheck() -> list[str]:
    """The topology's Kafka probe, authenticated as the admin principal."""
    probe = docker_healthcheck(SERVICES[ServiceName.KAFKA])
    command = f"{shlex.join(probe[1:])} --config {CLIENT_PROPERTIES}"
    return ["CMD", "sh", "-c", f"{client_properties_script(ADMIN)} && {command}"]


def client_env(principal: Principal, password: str) -> list[str]:
    """The optional `K2_KAFKA_*` security variables for a K2 container acting as `principal`."""
    values = {
        "security_protocol": PROTOCOL,
        "sasl_mechanism": MECHANISM,
        "sasl_username": principal.user,
        "sasl_password": password,
    }
    KafkaClientSecurity.model_validate(values)  # what K2's clients read must accept them
    return [f"{KAFKA_ENV_PREFIX}{name.upper()}={value}" for name, value in values.items()]
