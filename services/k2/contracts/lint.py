"""`k2 contracts lint`: K2's rules for market-data schemas, every violation named by file and field.

Rules: a namespace under `dev.k2.`; a `doc` on every record and field; money and quantity fields
are `decimal` with explicit precision and scale, the same (precision, scale) for a kind of
field across every schema (the scale-6-vs-8 mistake); times are `timestamp-micros`; raw
nanosecond fields are `long`; no `float`/`double` anywhere; unions are only `[null, T]` with
default null.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from k2.contracts.schemas import ContractSchema

NAMESPACE_PREFIX = "dev.k2."
MONEY_FIELD = re.compile(r"(?:^|_)(price|size|amount|notional|quantity|qty|volume|turnover|value)$")
TIME_FIELD = re.compile(r"(?:^|_)(time|timestamp|ts)$")
NANOS_FIELD = re.compile(r"_nanos$")
_FLOATING = {"float", "double"}
_FORBIDDEN_LOGICAL = {
    "timestamp-millis",
    "time-millis",
    "local-timestamp-millis",
    "local-timestamp-micros",
}


@dataclass(frozen=True)
class LintIssue:
    """One rule violation."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"field {self.field}" if self.field else "record"
        return f"{self.file}: {where}: {self.message}"


def lint_schema(schema: ContractSchema) -> list[LintIssue]:
    """Every violation in one schema file."""
    file = str(schema.path)
    issues: list[LintIssue] = []
    namespace = schema.raw.get("namespace")
    if not isinstance(namespace, str) or not namespace.startswith(NAMESPACE_PREFIX):
        issues.append(LintIssue(file, "", f"namespace must start with {NAMESPACE_PREFIX!r}"))
    issues += [LintIssue(file, path, msg) for path, msg in _record(schema.raw, "")]
    return issues


def lint_all(schemas: Iterable[ContractSchema]) -> list[LintIssue]:
    """Violations in every schema plus cross-schema decimal consistency."""
    schemas = list(schemas)
    issues = [issue for schema in schemas for issue in lint_schema(schema)]
    seen: dict[str, tuple[tuple[int, int], str]] = {}
    for schema in schemas:
        for field in schema.raw.get("fields", []):
            match = MONEY_FIELD.search(str(field["name"]))
            decimal = _decimal_of(_non_null(field["type"]))
            if match is None or decimal is None:
                continue
            kind = match.group(1)
            where = f"{schema.path}:{field['name']}"
            if kind in seen and seen[kind][0] != decimal:
                first, at = seen[kind]
                issues.append(
                    LintIssue(
                        str(schema.path),
                        str(field["name"]),
                        f"{kind} fields must share one decimal type: decimal{decimal} here,"
                        f" decimal{first} at {at}",
                    )
                )
            seen.setdefault(kind, (decimal, where))
    return issues


def _record(record: dict[str, Any], prefix: str) -> Iterator[tuple[str, str]]:
    if not str(record.get("doc", "")).strip():
        yield (prefix.rstrip("."), "record has no doc")
    for field in record.get("fields", []):
        name = str(field.get("name"))
        path = prefix + name
        if not str(field.get("doc", "")).strip():
            yield path, "missing doc"
        yield from _field_rules(name, path, field)
        yield from _type(field["type"], path)


def _field_rules(name: str, path: str, field: dict[str, Any]) -> Iterator[tuple[str, str]]:
    kind = field["type"]
    if isinstance(kind, list):
        if len(kind) != 2 or "null" not in kind or kind[0] != "null":
            yield path, f'union {kind!r}: only ["null", T] is allowed'
        elif "default" not in field or field["default"] is not None:
            yield path, "nullable field must have default null"
    target = _non_null(kind)
    if MONEY_FIELD.search(name):
        decimal = target if isinstance(target, dict) else {}
        if decimal.get("logicalType") != "decimal":
            yield path, "money/quantity field must be an Avro decimal (bytes, logicalType decimal)"
        elif "precision" not in decimal or "scale" not in decimal:
            yield path, "decimal must state both precision and scale"
    if TIME_FIELD.search(name) and not (
        isinstance(target, dict)
        and target.get("type") == "long"
        and target.get("logicalType") == "timestamp-micros"
    ):
        yield path, "time field must be long with logicalType timestamp-micros (UTC micros)"
    if NANOS_FIELD.search(name) and target != "long":
        yield path, "raw nanosecond field must be a long"


def _type(kind: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(kind, str):
        if kind in _FLOATING:
            yield path, f"{kind} is not allowed: use decimal for values, long for counts"
        return
    if isinstance(kind, list):
        for branch in kind:
            yield from _type(branch, path)
        return
    logical = kind.get("logicalType")
    if logical in _FORBIDDEN_LOGICAL:
        yield path, f"{logical} is not allowed: K2 times are UTC timestamp-micros"
    inner = kind.get("type")
    if inner == "record":
        yield from _record(kind, path + ".")
    elif inner == "array":
        yield from _type(kind["items"], path + "[]")
    elif inner == "map":
        yield from _type(kind["values"], path + "{}")
    elif isinstance(inner, (str, list, dict)):
        yield from _type(inner, path)


def _non_null(kind: Any) -> Any:
    if isinstance(kind, list):
        branches = [b for b in kind if b != "null"]
        return branches[0] if len(branches) == 1 else kind
    return kind


def _decimal_of(kind: Any) -> tuple[int, int] | None:
    if isinstance(kind, dict) and kind.get("logicalType") == "decimal":
        return (int(kind.get("precision", 0)), int(kind.get("scale", 0)))
    return None
