"""`k2 bootstrap`: topics, subjects, namespace and tables from the catalogue, idempotently.

Order: every check first (local lint and compatibility, topic and table drift, the registry's
verdict on unregistered versions), then topics, subjects and tables. Running it twice changes
nothing; an existing table is evolved with `union_by_name`, never dropped; a topic or table
whose partitioning differs from the catalogue is reported, never silently rebuilt (changing a
topic's partition count would reshuffle keys; changing a table's spec is a deliberate act).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, untyped
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)
from confluent_kafka.schema_registry import SchemaRegistryClient
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import ValidationError
from pyiceberg.partitioning import PartitionField as IcebergPartitionField
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.sorting import NullOrder, SortDirection, SortField, SortOrder
from pyiceberg.transforms import IdentityTransform, parse_transform

from k2 import kafka
from k2.catalog import load_catalog
from k2.contracts.catalogue import Catalogue, Dataset
from k2.contracts.mapping import (
    evolve,
    iceberg_schema,
    iceberg_schema_for_versions,
    same_structure,
)
from k2.contracts.registry import apply_registration, local_problems, plan_registration
from k2.contracts.schemas import all_schemas
from k2.errors import ContractError, K2Error
from k2.serde.serializer import registry_client
from k2.settings import CatalogPrincipal, Endpoints

ADMIN_TIMEOUT_S = 30.0
PARTITION_FIELD_ID_START = 1000  # Iceberg's convention for partition field ids
TABLE_PROPERTIES = {"format-version": "2", "write.parquet.compression-codec": "zstd"}


class Change(StrEnum):
    """What bootstrap did to one object."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Action:
    """One object bootstrap looked at."""

    kind: str
    name: str
    change: Change
    detail: str = ""


@dataclass
class BootstrapReport:
    """Everything one bootstrap run did."""

    actions: list[Action] = field(default_factory=list)

    @property
    def changed(self) -> list[Action]:
        """Actions that created or updated something."""
        return [a for a in self.actions if a.change is not Change.UNCHANGED]


@dataclass(frozen=True)
class _TopicWanted:
    name: str
    partitions: int
    # None: the cluster's default.replication.factor.
    replication: int | None
    configs: dict[str, str]


def _wanted_topics(catalogue: Catalogue) -> list[_TopicWanted]:
    wanted = []
    for d in catalogue.datasets.values():
        wanted.append(
            _TopicWanted(d.topic.name, d.topic.partitions, d.replication, d.topic.configs())
        )
        dlq_configs = {"cleanup.policy": "delete", "retention.ms": str(d.dlq_retention_ms)}
        wanted.append(_TopicWanted(d.dlq_topic, d.topic.partitions, d.replication, dlq_configs))
    return wanted


class TopicBootstrap:
    """Creates missing topics and aligns the configs K2 manages on existing ones."""

    def __init__(self, admin: AdminClient, catalogue: Catalogue) -> None:
        self._admin = admin
        self._wanted = _wanted_topics(catalogue)

    def _existing(self) -> dict[str, int]:
        try:
            metadata = self._admin.list_topics(timeout=ADMIN_TIMEOUT_S)
        except KafkaException as e:
            raise K2Error(f"cannot list Kafka topics: {e}") from e
        return {name: len(t.partitions) for name, t in metadata.topics.items()}

    def problems(self) -> list[str]:
        """Drift that bootstrap will not fix by itself."""
        existing = self._existing()
        return [
            f"topic {w.name} has {existing[w.name]} partitions, catalogue says {w.partitions}"
            for w in self._wanted
            if w.name in existing and existing[w.name] != w.partitions
        ]

    def apply(self) -> list[Action]:
        """Create or align every topic."""
        existing = self._existing()
        missing = [w for w in self._wanted if w.name not in existing]
        actions = self._create(missing)
        for w in self._wanted:
            if w.name in existing:
                actions.append(self._align(w))
        return actions

    def _create(self, missing: list[_TopicWanted]) -> list[Action]:
        if not missing:
            return []
        new = [
            # -1 asks the broker for its default.replication.factor (CreateTopics v4+).
            NewTopic(
                w.name,
                w.partitions,
                -1 if w.replication is None else w.replication,
                config=w.configs,
            )
            for w in missing
        ]
        futures = self._admin.create_topics(new, request_timeout=ADMIN_TIMEOUT_S)
        actions = []
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as e:
                if e.args[0].name() != "TOPIC_ALREADY_EXISTS":  # lost a race: that is fine
                    raise K2Error(f"cannot create topic {name}: {e}") from e
            actions.append(Action("topic", name, Change.CREATED))
        return actions

    def _align(self, wanted: _TopicWanted) -> Action:
        resource = ConfigResource(ConfigResource.Type.TOPIC, wanted.name)
        try:
            current = self._admin.describe_configs([resource])[resource].result()
        except KafkaException as e:
            raise K2Error(f"cannot describe topic {wanted.name}: {e}") from e
        drift = {k: v for k, v in wanted.configs.items() if current[k].value != v}
        if not drift:
            return Action("topic", wanted.name, Change.UNCHANGED)
        entries = [
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in drift.items()
        ]
        change = ConfigResource(ConfigResource.Type.TOPIC, wanted.name, incremental_configs=entries)
        try:
            self._admin.incremental_alter_configs([change])[change].result()
        except KafkaException as e:
            raise K2Error(f"cannot update configs of topic {wanted.name}: {e}") from e
        return Action("topic", wanted.name, Change.UPDATED, f"set {sorted(drift)}")


def partition_spec(dataset: Dataset, schema: Schema) -> PartitionSpec:
    """The catalogue's partition spec, bound to `schema`'s field ids."""
    fields = [
        IcebergPartitionField(
            source_id=schema.find_field(p.source).field_id,
            field_id=PARTITION_FIELD_ID_START + index,
            transform=parse_transform(p.transform),
            name=p.name,
        )
        for index, p in enumerate(dataset.table.partition_spec)
    ]
    return PartitionSpec(*fields)


def sort_order(dataset: Dataset, schema: Schema) -> SortOrder:
    """The catalogue's sort order (ascending, nulls first), bound to `schema`'s field ids."""
    fields = [
        SortField(
            source_id=schema.find_field(name).field_id,
            transform=IdentityTransform(),
            direction=SortDirection.ASC,
            null_order=NullOrder.NULLS_FIRST,
        )
        for name in dataset.table.sort_order
    ]
    return SortOrder(*fields)


def layout_of(table: Table) -> tuple[list[tuple[str, str]], list[str]]:
    """A table's partition fields as (source column, transform) and its sort columns."""
    schema = table.schema()
    spec = [
        (schema.find_column_name(f.source_id) or "?", str(f.transform)) for f in table.spec().fields
    ]
    order = [schema.find_column_name(f.source_id) or "?" for f in table.sort_order().fields]
    return spec, order


def expected_layout(dataset: Dataset) -> tuple[list[tuple[str, str]], list[str]]:
    """The catalogue's partition fields and sort columns, in `layout_of`'s form."""
    spec = [(p.source, str(parse_transform(p.transform))) for p in dataset.table.partition_spec]
    return spec, list(dataset.table.sort_order)


class TableBootstrap:
    """Creates the namespace and tables; evolves tables whose schema is older."""

    def __init__(self, catalog: Catalog, catalogue: Catalogue) -> None:
        self._catalog = catalog
        self._catalogue = catalogue
        self._versions = all_schemas(catalogue.source.parent if catalogue.source else None)

    def problems(self) -> list[str]:
        """Everything that would stop a table half-way, found before anything is written.

        A schema history that cannot evolve a table, an existing table that cannot be evolved
        to the newest schema, and an existing table whose partitioning or sort order differs
        from the catalogue.
        """
        problems = []
        for dataset in self._catalogue.datasets.values():
            name = ".".join(dataset.table_identifier)
            try:
                target = self._target(dataset)
            except ContractError as e:
                problems.append(f"table {name}: {e}")
                continue
            if not self._catalog.table_exists(dataset.table_identifier):
                continue
            table = self._catalog.load_table(dataset.table_identifier)
            if layout_of(table) != expected_layout(dataset):
                problems.append(
                    f"table {name}: layout {layout_of(table)}"
                    f" differs from catalogue {expected_layout(dataset)}"
                )
            try:
                evolve(table.schema(), target, where=f"table {name}")
            except ContractError as e:
                problems.append(str(e))
        return problems

    def apply(self) -> list[Action]:
        """Create the namespace and every table; evolve existing ones."""
        namespace = self._catalogue.namespace
        actions = [Action("namespace", namespace, Change.UNCHANGED)]
        if not self._catalog.namespace_exists(namespace):
            self._catalog.create_namespace_if_not_exists(namespace)
            actions[0] = Action("namespace", namespace, Change.CREATED)
        actions += [self._table(d) for d in self._catalogue.datasets.values()]
        return actions

    def _target(self, dataset: Dataset) -> Schema:
        """The newest schema's Iceberg form, with ids stable across the evolution."""
        return iceberg_schema_for_versions(self._versions[dataset.schema_name])

    def _table(self, dataset: Dataset) -> Action:
        versions = self._versions[dataset.schema_name]
        target = self._target(dataset)
        name = ".".join(dataset.table_identifier)
        if self._catalog.table_exists(dataset.table_identifier):
            table = self._catalog.load_table(dataset.table_identifier)
            if same_structure(table.schema(), target):
                return Action("table", name, Change.UNCHANGED)
            try:
                with table.update_schema() as update:
                    update.union_by_name(target)
            except (ValueError, ValidationError) as e:  # `problems` ran the same evolution
                raise ContractError(f"table {name}: cannot evolve the table schema: {e}") from e
            return Action("table", name, Change.UPDATED, "schema evolved")
        # Created at v1 and evolved in one transaction, so field ids equal those of a table
        # created long ago and evolved since (see k2.contracts.mapping).
        first = iceberg_schema(versions[0])
        transaction = self._catalog.create_table_transaction(
            dataset.table_identifier,
            schema=first,
            partition_spec=partition_spec(dataset, first),
            sort_order=sort_order(dataset, first),
            properties=TABLE_PROPERTIES,
        )
        if len(versions) > 1:
            with transaction.update_schema() as update:
                update.union_by_name(target)
        transaction.commit_transaction()
        return Action("table", name, Change.CREATED)


def bootstrap(
    catalogue: Catalogue,
    *,
    admin: AdminClient,
    registry: SchemaRegistryClient,
    catalog: Catalog,
) -> BootstrapReport:
    """Check everything, then create or align topics, subjects, namespace and tables."""
    topics = TopicBootstrap(admin, catalogue)
    tables = TableBootstrap(catalog, catalogue)
    problems = local_problems(catalogue) + topics.problems() + tables.problems()
    if problems:
        raise ContractError("bootstrap changed nothing:\n" + "\n".join(problems))
    plan = plan_registration(catalogue, registry)  # asks the registry before writing anything
    report = BootstrapReport()
    report.actions += topics.apply()
    registrations = apply_registration(registry, plan)
    report.actions += [
        Action(
            "subject",
            f"{r.subject} v{r.version}",
            Change.CREATED if r.created else Change.UNCHANGED,
            f"id {r.schema_id}",
        )
        for r in registrations
    ]
    report.actions += tables.apply()
    return report


def bootstrap_stack(
    catalogue: Catalogue, endpoints: Endpoints, *, catalog: Catalog | None = None
) -> BootstrapReport:
    """`bootstrap` with clients built from `endpoints` (Kafka via `k2.kafka`), closed after.

    Pass `catalog` to use one the caller keeps open (and closes) itself.
    """
    # Both HTTP clients hold connection pools: close them however bootstrap ends.
    with registry_client(endpoints.schema_registry_url) as registry:
        admin = kafka.admin(endpoints.kafka_bootstrap_servers)
        if catalog is not None:
            return bootstrap(catalogue, admin=admin, registry=registry, catalog=catalog)
        # Creates namespaces and tables and evolves them: the catalog's admin principal.
        with load_catalog(endpoints, CatalogPrincipal.ADMIN) as opened:
            return bootstrap(catalogue, admin=admin, registry=registry, catalog=opened)
