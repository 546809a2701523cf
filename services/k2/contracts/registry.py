"""`k2 contracts register`: put every schema version under its subject, all or nothing.

Everything is checked before anything is written: local lint and compatibility, then the
registry's own compatibility verdict for every version that is not registered yet. Only when
all of that passes are subjects configured and versions registered (oldest first), so a bad
schema never leaves a subject half-registered.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from k2.contracts.catalogue import Catalogue
from k2.contracts.compat import check_versions
from k2.contracts.lint import lint_all
from k2.contracts.schemas import ContractSchema, all_schemas
from k2.errors import ContractError
from k2.serde.serializer import avro_schema

_NOT_FOUND = 404


@dataclass(frozen=True)
class Registration:
    """One schema version under one subject, and whether this run registered it."""

    subject: str
    version: int
    schema_id: int
    created: bool


def local_problems(catalogue: Catalogue) -> list[str]:
    """Lint and local compatibility problems of every schema the catalogue uses."""
    grouped = all_schemas(catalogue.source.parent if catalogue.source else None)
    problems = [str(issue) for versions in grouped.values() for issue in lint_all(versions)]
    for dataset in catalogue.datasets.values():
        problems += check_versions(grouped[dataset.schema_name], dataset.compatibility)
    return problems


def _registered_id(
    client: SchemaRegistryClient, subject: str, schema: ContractSchema
) -> int | None:
    try:
        found = client.lookup_schema(subject, avro_schema(schema))
    except SchemaRegistryError as e:
        if e.http_status_code == _NOT_FOUND:
            return None
        raise ContractError(f"registry lookup of {schema.path} under {subject}: {e}") from e
    return None if found.schema_id is None else int(found.schema_id)


def _registry_problems(
    client: SchemaRegistryClient, subject: str, pending: list[ContractSchema]
) -> list[str]:
    problems = []
    for schema in pending:
        try:
            # Against every version, not just the latest: Apicurio's `.../versions/latest` check
            # ignores a transitive level (it compares with the newest version only), while the
            # all-versions check and registration itself honour it.
            compatible = client.test_compatibility_all_versions(subject, avro_schema(schema))
        except SchemaRegistryError as e:
            if e.http_status_code == _NOT_FOUND:  # no subject yet: nothing to be incompatible with
                continue
            raise ContractError(f"registry compatibility check of {schema.path}: {e}") from e
        if not compatible:
            problems.append(f"{schema.path}: registry says incompatible with subject {subject}")
    return problems


@dataclass(frozen=True)
class PlannedRegistration:
    subject: str
    level: str
    schema: ContractSchema
    known_id: int | None


def plan_registration(
    catalogue: Catalogue, client: SchemaRegistryClient
) -> list[PlannedRegistration]:
    """Check every version locally and against the registry; write nothing."""
    problems = local_problems(catalogue)
    if problems:
        raise ContractError(
            "nothing registered: schemas fail local checks:\n" + "\n".join(problems)
        )
    grouped = all_schemas(catalogue.source.parent if catalogue.source else None)
    plan: list[PlannedRegistration] = []
    for dataset in catalogue.datasets.values():
        versions = grouped[dataset.schema_name]
        existing = {s.version: _registered_id(client, dataset.subject, s) for s in versions}
        pending = [s for s in versions if existing[s.version] is None]
        problems += _registry_problems(client, dataset.subject, pending)
        level = dataset.compatibility.value
        plan += [
            PlannedRegistration(dataset.subject, level, s, existing[s.version]) for s in versions
        ]
    if problems:
        raise ContractError("nothing registered:\n" + "\n".join(problems))
    return plan


def _align_level(client: SchemaRegistryClient, subject: str, level: str) -> None:
    """Set the subject's own compatibility level unless it already has exactly that one.

    A subject without a level of its own reads as 404 on Confluent and as `NONE` on Apicurio
    (whose effective level is then the global one); either way K2 sets it explicitly, so a
    change of the registry's global default never loosens K2's subjects.
    """
    try:
        current: str | None = client.get_compatibility(subject)
    except SchemaRegistryError as e:
        if e.http_status_code != _NOT_FOUND:
            raise
        current = None
    if current != level:
        client.set_compatibility(subject, level)


def apply_registration(
    client: SchemaRegistryClient, plan: list[PlannedRegistration]
) -> list[Registration]:
    """Set each subject's compatibility level and register its pending versions, oldest first."""
    results = []
    configured: set[str] = set()
    for item in plan:
        try:
            if item.subject not in configured:
                _align_level(client, item.subject, item.level)
                configured.add(item.subject)
            schema_id = item.known_id
            if schema_id is None:
                schema_id = int(client.register_schema(item.subject, avro_schema(item.schema)))
        except SchemaRegistryError as e:
            raise ContractError(f"registering {item.schema.path} under {item.subject}: {e}") from e
        created = item.known_id is None
        results.append(Registration(item.subject, item.schema.version, schema_id, created))
    return results


def register(catalogue: Catalogue, client: SchemaRegistryClient) -> list[Registration]:
    """Register every version of every dataset's schema; raise before writing if any check fails."""
    return apply_registration(client, plan_registration(catalogue, client))
