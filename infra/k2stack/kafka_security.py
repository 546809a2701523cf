"""Kafka SASL/SCRAM-SHA-512 with ACLs (`k2:kafkaSecurity: scram`): principals and settings.

K2's Kafka launcher (`k2stack.local.services.kafka`) applies these when a node is given SCRAM
passwords (K2's image, from its container spec):

- Client listeners (INTERNAL for containers, EXTERNAL for the host) and inter-broker traffic
  (INTERNAL) are SASL_PLAINTEXT with SCRAM-SHA-512; brokers talk to each other as the admin
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
  as above); nothing is allowed without an ACL (`k2stack.kafka_acls` grants them).
- SCRAM credentials are written into the metadata log when the storage is formatted
  (`StorageTool format --add-scram`), before the node first starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from k2.settings import KAFKA_ENV_PREFIX, KafkaClientSecurity

MECHANISM = "SCRAM-SHA-512"
PROTOCOL = "SASL_PLAINTEXT"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
SCRAM_LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
# The principal brokers use on the PLAINTEXT controller listener (see the module docstring).
CONTROLLER_PRINCIPAL = "User:ANONYMOUS"


@dataclass(frozen=True)
class Principal:
    """A SCRAM user: its name and the stack config key holding its password (a secret)."""

    user: str
    config_key: str

    @property
    def acl_principal(self) -> str:
        return f"User:{self.user}"


ADMIN = Principal("k2-admin", "kafkaAdminPassword")  # brokers, ACL job, bootstrap, operators
INGEST = Principal("k2-ingest", "kafkaIngestPassword")  # ingest workers
PRODUCER = Principal("k2-producer", "kafkaProducerPassword")  # feed handlers / replay
PRINCIPALS = (ADMIN, INGEST, PRODUCER)


def jaas(user: str, password: str) -> str:
    return f'{SCRAM_LOGIN_MODULE} required username="{user}" password="{password}";'


def broker_properties(listeners: tuple[str, ...], admin_password: str) -> dict[str, str]:
    """The SASL/ACL server properties of a node; `listeners[0]` carries inter-broker traffic.

    The first listener's JAAS entry is also the broker's own login (as the admin principal);
    the others only verify clients against the SCRAM credentials in the metadata log.
    """
    props = {
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        "authorizer.class.name": AUTHORIZER,
        "super.users": f"{ADMIN.acl_principal};{CONTROLLER_PRINCIPAL}",
        "allow.everyone.if.no.acl.found": "false",
    }
    for index, listener in enumerate(listeners):
        entry = (
            jaas(ADMIN.user, admin_password) if index == 0 else f"{SCRAM_LOGIN_MODULE} required;"
        )
        props[f"listener.name.{listener.lower()}.{MECHANISM.lower()}.sasl.jaas.config"] = entry
    return props


def format_arguments(passwords: Mapping[str, str]) -> list[str]:
    """`StorageTool format` arguments that create each user's SCRAM credential."""
    args: list[str] = []
    for user, password in sorted(passwords.items()):
        args += ["--add-scram", f"{MECHANISM}=[name={user},password={password}]"]
    return args


def client_config(user: str, password: str) -> dict[str, str]:
    """librdkafka settings for a client authenticating as `user`."""
    return {
        "security.protocol": PROTOCOL,
        "sasl.mechanism": MECHANISM,
        "sasl.username": user,
        "sasl.password": password,
    }


def client_env(principal: Principal, password: str) -> dict[str, str]:
    """The optional `K2_KAFKA_*` security variables for a K2 process acting as `principal`."""
    values = {
        "security_protocol": PROTOCOL,
        "sasl_mechanism": MECHANISM,
        "sasl_username": principal.user,
        "sasl_password": password,
    }
    KafkaClientSecurity.model_validate(values)  # what K2's clients read must accept them
    return {f"{KAFKA_ENV_PREFIX}{name.upper()}": value for name, value in values.items()}
