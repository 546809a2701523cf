"""Every schema parses and passes lint; lint names the file and field of each violation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from k2.contracts.lint import lint_all, lint_schema
from k2.contracts.schemas import all_schemas, latest_schema, load_schema, read_schema_file
from k2.errors import ContractError


def test_every_schema_parses_and_lints_clean() -> None:
    schemas = [s for versions in all_schemas().values() for s in versions]
    assert {s.name for s in schemas} == {"trade", "quote", "reference_data"}
    assert [str(i) for i in lint_all(schemas)] == []


def test_latest_and_versions() -> None:
    assert latest_schema("trade").version == 2
    assert load_schema("trade", 1).version == 1
    with pytest.raises(ContractError, match="no version 9"):
        load_schema("trade", 9)
    with pytest.raises(ContractError, match="unknown schema 'nope'"):
        load_schema("nope")


def _write(tmp_path: Path, fields: list[dict[str, Any]], **extra: Any) -> Path:
    raw = {
        "type": "record",
        "name": "Bad",
        "namespace": "dev.k2.test",
        "doc": "x",
        "fields": fields,
    }
    raw.update(extra)
    path = tmp_path / "bad.v1.avsc"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"name": "price", "type": "bytes", "doc": "d"}, "must be an Avro decimal"),
        ({"name": "size", "type": "double", "doc": "d"}, "double is not allowed"),
        (
            {
                "name": "amount",
                "type": {"type": "bytes", "logicalType": "decimal", "precision": 9},
                "doc": "d",
            },
            "both precision and scale",
        ),
        (
            {
                "name": "event_time",
                "type": {"type": "long", "logicalType": "timestamp-millis"},
                "doc": "d",
            },
            "timestamp-micros",
        ),
        ({"name": "symbol", "type": "string"}, "missing doc"),
        (
            {"name": "ratio", "type": ["null", "float"], "default": None, "doc": "d"},
            "float is not allowed",
        ),
        ({"name": "venue", "type": ["string", "null"], "doc": "d"}, 'only ["null", T]'),
        ({"name": "x_nanos", "type": "int", "doc": "d"}, "must be a long"),
    ],
)
def test_lint_names_file_and_field(tmp_path: Path, field: dict[str, Any], message: str) -> None:
    path = _write(tmp_path, [field])
    issues = [str(i) for i in lint_schema(read_schema_file(path))]
    assert any(message in i and str(path) in i and f"field {field['name']}" in i for i in issues), (
        issues
    )


def test_lint_requires_k2_namespace(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"name": "a", "type": "string", "doc": "d"}], namespace="com.other")
    assert any("namespace" in str(i) for i in lint_schema(read_schema_file(path)))


def test_lint_refuses_two_scales_for_one_kind_of_money(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {
                "name": "price",
                "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 6},
                "doc": "d",
            }
        ],
    )
    issues = [str(i) for i in lint_all([latest_schema("trade"), read_schema_file(path)])]
    assert any("share one decimal type" in i and "decimal(18, 6)" in i for i in issues), issues


def test_unparseable_schema_names_its_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.v1.avsc"
    path.write_text('{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}')
    with pytest.raises(ContractError, match=str(path)):
        read_schema_file(path)
