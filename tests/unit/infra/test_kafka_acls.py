"""The ACLs `k2-stack kafka-acls` grants: exactly what each principal needs, from the catalogue."""

from __future__ import annotations

# confluent_kafka.admin re-exports these without `__all__` (as in k2stack.kafka_acls).
from confluent_kafka.admin._acl import AclBinding, AclOperation, AclPermissionType
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType

from k2.contracts.catalogue import load_catalogue
from k2stack import kafka_security as sasl
from k2stack.kafka_acls import AclGrant, acl_grants, ingest_group_prefix

CATALOGUE = load_catalogue()
TOPICS = tuple(sorted(d.topic.name for d in CATALOGUE.datasets.values()))
DLQS = tuple(sorted(d.dlq_topic for d in CATALOGUE.datasets.values()))


def grant_set(grants: list[AclGrant]) -> set[tuple[str, frozenset[str], str, frozenset[str], bool]]:
    return {
        (
            g.principal.acl_principal,
            frozenset(g.operations),
            g.resource,
            frozenset(g.names),
            g.prefixed,
        )
        for g in grants
    }


def test_acls_grant_exactly_what_each_principal_needs() -> None:
    assert TOPICS and DLQS
    assert grant_set(acl_grants(CATALOGUE, ingest_group_prefix())) == {
        ("User:k2-ingest", frozenset({"Read", "Describe"}), "topic", frozenset(TOPICS), False),
        (
            "User:k2-ingest",
            frozenset({"Read", "Describe"}),
            "group",
            frozenset({"k2-ingest-"}),
            True,
        ),
        ("User:k2-ingest", frozenset({"Write", "Describe"}), "topic", frozenset(DLQS), False),
        ("User:k2-producer", frozenset({"Write", "Describe"}), "topic", frozenset(TOPICS), False),
    }
    # The ingest workers' group ids are the prefix plus the topic name.
    assert ingest_group_prefix() == "k2-ingest-"


def test_no_grant_for_the_admin_it_is_a_super_user() -> None:
    grants = acl_grants(CATALOGUE, ingest_group_prefix())
    assert sasl.ADMIN not in {g.principal for g in grants}


def binding(
    kind: ResourceType, name: str, pattern: ResourcePatternType, user: str, op: AclOperation
) -> AclBinding:
    return AclBinding(kind, name, pattern, f"User:{user}", "*", op, AclPermissionType.ALLOW)


def test_bindings_are_the_matching_confluent_kafka_acl_bindings() -> None:
    topic, group = ResourceType.TOPIC, ResourceType.GROUP
    literal, prefixed = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
    read, write, describe = AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE
    expected = [
        *(binding(topic, t, literal, "k2-ingest", op) for t in TOPICS for op in (read, describe)),
        binding(group, "k2-ingest-", prefixed, "k2-ingest", read),
        binding(group, "k2-ingest-", prefixed, "k2-ingest", describe),
        *(binding(topic, t, literal, "k2-ingest", op) for t in DLQS for op in (write, describe)),
        *(
            binding(topic, t, literal, "k2-producer", op)
            for t in TOPICS
            for op in (write, describe)
        ),
    ]
    actual = [b for g in acl_grants(CATALOGUE, ingest_group_prefix()) for b in g.bindings()]
    assert actual == expected
    assert len(actual) == len(set(actual)) == 4 * len(TOPICS) + 2 + 2 * len(DLQS)
