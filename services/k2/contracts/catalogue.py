"""The typed topic/table catalogue read from `contracts/catalogue.yaml`.

One `Dataset` per data set says which schema it carries, the Kafka topic it flows through
(partitions, key, retention, cleanup policy), its registry subject and DLQ topic (derived from
the topic name so they can never drift), and the Iceberg table it lands in (partition spec and
sort order). `Catalogue.with_prefix` derives a copy whose topics, subjects and namespace carry a
unique prefix, so parallel tests never collide.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from k2.contracts.paths import contracts_dir
from k2.errors import ContractError

CATALOGUE_FILE = "catalogue.yaml"
SUBJECT_SUFFIX = "-value"
DLQ_SUFFIX = ".dlq"
KEY_SEPARATOR = "|"
"""Joins the values of a multi-field key (e.g. `XASX|BHP`); single-field keys are the value."""

_TOPIC_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.\-]*$")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_TRANSFORM = re.compile(
    r"^(identity|year|month|day|hour|void|bucket\[[1-9][0-9]*\]|truncate\[[1-9][0-9]*\])$"
)


class CleanupPolicy(StrEnum):
    """Kafka `cleanup.policy`."""

    DELETE = "delete"
    COMPACT = "compact"


class Compatibility(StrEnum):
    """Schema registry compatibility levels K2 accepts (transitive: every earlier version)."""

    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TopicSpec(_Frozen):
    """A Kafka topic and how records are keyed onto its partitions."""

    name: str
    partitions: int = Field(ge=1)
    key: tuple[str, ...] = Field(min_length=1)
    retention_ms: int = Field(ge=-1)
    cleanup_policy: CleanupPolicy

    @field_validator("name")
    @classmethod
    def _topic_name(cls, value: str) -> str:
        if not _TOPIC_NAME.match(value) or len(value) > 200:
            raise ValueError(f"invalid Kafka topic name {value!r}")
        return value

    def configs(self) -> dict[str, str]:
        """The topic-level Kafka configs K2 manages."""
        return {"cleanup.policy": self.cleanup_policy.value, "retention.ms": str(self.retention_ms)}


class PartitionField(_Frozen):
    """One Iceberg partition field: a transform applied to a source column."""

    source: str
    transform: str

    @field_validator("transform")
    @classmethod
    def _transform(cls, value: str) -> str:
        if not _TRANSFORM.match(value):
            raise ValueError(
                f"invalid partition transform {value!r} (expected identity, year, month, day,"
                " hour, void, bucket[N] or truncate[W])"
            )
        return value

    @property
    def name(self) -> str:
        """The partition field name, following Iceberg's defaults (`event_time_day`, ...)."""
        base = self.transform.split("[", 1)[0]
        return self.source if base == "identity" else f"{self.source}_{base}"


class TableSpec(_Frozen):
    """The Iceberg table a dataset lands in."""

    name: str
    partition_spec: tuple[PartitionField, ...] = ()
    sort_order: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _table_name(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"invalid table name {value!r}")
        return value


class ValidationRule(_Frozen):
    """One validation rule: exactly one check naming its column(s). The reason a failing row
    is dead-lettered with derives from it: `empty_<c>`, `non_positive_<c>`,
    `implausible_<c>`, `<later>_before_<earlier>`."""

    non_empty: str | None = None
    positive: str | None = None
    plausible_time: str | None = None
    not_before: tuple[str, str] | None = None

    @model_validator(mode="after")
    def _one_check(self) -> ValidationRule:
        if len(self.model_dump(exclude_none=True)) != 1:
            raise ValueError(
                "a rule names exactly one of non_empty, positive, plausible_time, not_before"
            )
        return self

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the rule reads."""
        single = self.non_empty or self.positive or self.plausible_time
        return (single,) if single else tuple(self.not_before or ())

    @property
    def reason(self) -> str:
        """The dead-letter reason of a row failing this rule."""
        if self.non_empty:
            return f"empty_{self.non_empty}"
        if self.positive:
            return f"non_positive_{self.positive}"
        if self.plausible_time:
            return f"implausible_{self.plausible_time}"
        later, earlier = self.not_before or ("", "")
        return f"{later}_before_{earlier}"


class DlqBudgetSpec(_Frozen):
    """Stop a worker when more than `max_ratio` of the last `window` records were dead-lettered
    (duplicates exempt), once `min_records` were seen: a bad deploy fails loudly."""

    max_ratio: float = Field(ge=0, le=1)
    window: int = Field(ge=1)
    min_records: int = Field(ge=1)


class IngestSpec(_Frozen):
    """How a dataset is ingested: what identifies a record, what makes one invalid, when the
    DLQ budget stops a worker."""

    # A record is (exchange, symbol, <identity>): dedup never looks at content.
    identity: str
    validation: tuple[ValidationRule, ...] = Field(min_length=1)
    dlq_budget: DlqBudgetSpec


class Dataset(_Frozen):
    """One data set: schema, topic, subject, DLQ, table and how it is ingested."""

    name: str
    schema_name: str = Field(alias="schema")
    topic: TopicSpec
    table: TableSpec
    dlq_retention_ms: int = Field(default=2_592_000_000, ge=-1)
    # Optional in the model (a catalogue of topics only still loads); an ingest worker of a
    # dataset without it refuses to start (`Dataset.ingest_spec`).
    ingest: IngestSpec | None = None
    # Replicas of the dataset's topics. None: the cluster's own `default.replication.factor`,
    # which every K2 stack sets to its shape (1 on a single node, 3 on the cluster profile and
    # the Pulumi cluster stack), so one catalogue fits both; `k2 bootstrap --replication` pins it.
    replication: int | None = Field(default=None, ge=1)
    compatibility: Compatibility
    namespace: str

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @property
    def subject(self) -> str:
        """Registry subject of the record value (TopicNameStrategy)."""
        return self.topic.name + SUBJECT_SUFFIX

    @property
    def dlq_topic(self) -> str:
        """Dead-letter topic for records that fail decoding or validation."""
        return self.topic.name + DLQ_SUFFIX

    @property
    def table_identifier(self) -> tuple[str, str]:
        """`(namespace, table)` as pyiceberg takes it."""
        return (self.namespace, self.table.name)

    def ingest_spec(self) -> IngestSpec:
        """The dataset's ingest section; ContractError when the catalogue lacks it."""
        if self.ingest is None:
            raise ContractError(
                f"dataset {self.name!r} has no `ingest` section in the catalogue "
                "(identity, validation, dlq_budget): it cannot be ingested"
            )
        return self.ingest

    def record_key(self, record: dict[str, Any]) -> str:
        """The Kafka message key of `record`: its key field values joined by `|`."""
        try:
            return KEY_SEPARATOR.join(str(record[field]) for field in self.topic.key)
        except KeyError as e:
            raise ContractError(f"{self.name}: record has no key field {e.args[0]!r}") from e


class Catalogue(_Frozen):
    """All datasets, by name."""

    namespace: str
    datasets: dict[str, Dataset]
    source: Path | None = None

    def dataset(self, name: str) -> Dataset:
        """The dataset called `name` (e.g. `trades`)."""
        try:
            return self.datasets[name]
        except KeyError as e:
            known = ", ".join(sorted(self.datasets))
            raise ContractError(f"unknown dataset {name!r} (known: {known})") from e

    def by_topic(self, topic: str) -> Dataset:
        """The dataset whose topic is `topic`."""
        for dataset in self.datasets.values():
            if dataset.topic.name == topic:
                return dataset
        raise ContractError(f"no dataset flows through topic {topic!r}")

    def with_prefix(self, prefix: str) -> Catalogue:
        """A copy whose topics, subjects, DLQs and namespace all start with `prefix`."""
        if not _PREFIX.match(prefix):
            raise ContractError(f"invalid prefix {prefix!r}: use lowercase letters, digits, _")
        namespace = prefix + self.namespace
        datasets = {
            name: d.model_copy(
                update={
                    "namespace": namespace,
                    "topic": d.topic.model_copy(update={"name": prefix + d.topic.name}),
                }
            )
            for name, d in self.datasets.items()
        }
        return self.model_copy(update={"namespace": namespace, "datasets": datasets})

    def with_replication(self, replication: int) -> Catalogue:
        """A copy with every topic's replication factor set to `replication`."""
        if replication < 1:
            raise ContractError(f"replication must be >= 1, got {replication}")
        datasets = {
            n: d.model_copy(update={"replication": replication}) for n, d in self.datasets.items()
        }
        return self.model_copy(update={"datasets": datasets})


def _build(document: Any, path: Path) -> Catalogue:
    if not isinstance(document, dict):
        raise ContractError(f"{path}: the catalogue must be a YAML mapping")
    defaults = {
        "namespace": document.get("namespace"),
        "replication": document.get("replication"),
        "compatibility": document.get("compatibility", Compatibility.BACKWARD_TRANSITIVE),
    }
    raw_datasets = document.get("datasets")
    if not isinstance(raw_datasets, dict) or not raw_datasets:
        raise ContractError(f"{path}: `datasets` must be a non-empty mapping")
    datasets: dict[str, Dataset] = {}
    for name, body in raw_datasets.items():
        if not isinstance(body, dict):
            raise ContractError(f"{path}: datasets.{name} must be a mapping")
        try:
            datasets[name] = Dataset.model_validate({**defaults, **body, "name": name})
        except ValidationError as e:
            raise ContractError(f"{path}: datasets.{name}: {_explain(e)}") from e
    extra = set(document) - {"namespace", "replication", "compatibility", "datasets"}
    if extra:
        raise ContractError(f"{path}: unknown top-level keys {sorted(extra)}")
    if not isinstance(defaults["namespace"], str) or not _IDENTIFIER.match(defaults["namespace"]):
        raise ContractError(f"{path}: `namespace` must be a lowercase identifier")
    return Catalogue(namespace=defaults["namespace"], datasets=datasets, source=path)


def _explain(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def load_catalogue(path: Path | None = None, *, check_schemas: bool = True) -> Catalogue:
    """Load and validate the catalogue.

    With `check_schemas` (the default) every dataset is also checked against its newest schema:
    the schema exists, key/partition/sort fields exist and each transform suits its column.
    """
    path = path or contracts_dir() / CATALOGUE_FILE
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ContractError(f"{path}: cannot read catalogue: {e}") from e
    catalogue = _build(document, path)
    if check_schemas:
        # Imported here: catalogue_check imports this module (it checks Catalogue objects).
        from k2.contracts.catalogue_check import check_catalogue

        problems = check_catalogue(catalogue, schemas_root=path.parent)
        if problems:
            raise ContractError("\n".join(problems))
    return catalogue
