"""Local compatibility checks: each schema version against every earlier one.

BACKWARD means a reader with the new schema can read data written with an old one (Avro schema
resolution). K2 is stricter than the registry in two places that matter for the lake:
decimal precision and scale must not change (the registry ignores logical types, so a scale
change would silently rescale every stored value), and a field added after v1 must be optional
with default null (Iceberg cannot add a required column to a table that already holds rows).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from k2.contracts.catalogue import Compatibility
from k2.contracts.schemas import ContractSchema

_PROMOTIONS = {
    ("int", "long"),
    ("int", "float"),
    ("int", "double"),
    ("long", "float"),
    ("long", "double"),
    ("float", "double"),
    ("string", "bytes"),
    ("bytes", "string"),
}


class _Names:
    """Named Avro types of one schema, so references by name resolve."""

    def __init__(self, root: Any) -> None:
        self.types: dict[str, Any] = {}
        self._collect(root, None)

    def _collect(self, node: Any, namespace: str | None) -> None:
        if isinstance(node, list):
            for branch in node:
                self._collect(branch, namespace)
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind in ("record", "enum", "fixed"):
            namespace = node.get("namespace", namespace)
            self.types[str(node["name"])] = node
            if namespace:
                self.types[f"{namespace}.{node['name']}"] = node
        for field in node.get("fields", []):
            self._collect(field["type"], namespace)
        for key in ("items", "values"):
            if key in node:
                self._collect(node[key], namespace)
        if isinstance(kind, (dict, list)):
            self._collect(kind, namespace)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, str) and node in self.types:
            return self.types[node]
        return node


class _Backward:
    """Can `reader` read what `writer` wrote? Yields one message per incompatibility."""

    def __init__(self, reader: dict[str, Any], writer: dict[str, Any]) -> None:
        self._r = _Names(reader)
        self._w = _Names(writer)

    def check(self, reader: Any, writer: Any, path: str) -> Iterator[str]:
        reader, writer = self._r.resolve(reader), self._w.resolve(writer)
        if isinstance(writer, list):
            for branch in writer:
                if not any(self._ok(r, branch) for r in _branches(reader)):
                    yield f"{path}: writer type {_label(branch)} has no match in {_label(reader)}"
            return
        if isinstance(reader, list):
            if not any(self._ok(r, writer) for r in reader):
                yield f"{path}: writer type {_label(writer)} has no match in {_label(reader)}"
            return
        yield from self._single(reader, writer, path)

    def _ok(self, reader: Any, writer: Any) -> bool:
        return not any(True for _ in self.check(reader, writer, ""))

    def _single(self, reader: Any, writer: Any, path: str) -> Iterator[str]:
        r_kind, w_kind = _kind(reader), _kind(writer)
        if r_kind != w_kind and (w_kind, r_kind) not in _PROMOTIONS:
            yield f"{path}: type changed from {w_kind} to {r_kind}"
            return
        r_dec, w_dec = _decimal(reader), _decimal(writer)
        if r_dec != w_dec:
            yield f"{path}: decimal changed from {w_dec} to {r_dec} (values would be rescaled)"
        if r_kind == "record":
            yield from self._record(reader, writer, path)
        elif r_kind == "enum":
            missing = set(writer["symbols"]) - set(reader["symbols"])
            if missing and "default" not in reader:
                yield f"{path}: enum symbols {sorted(missing)} removed and no enum default"
        elif r_kind == "array":
            yield from self.check(reader["items"], writer["items"], path + "[]")
        elif r_kind == "map":
            yield from self.check(reader["values"], writer["values"], path + "{}")
        elif r_kind == "fixed" and reader["size"] != writer["size"]:
            yield f"{path}: fixed size changed from {writer['size']} to {reader['size']}"
        if r_kind in ("record", "enum", "fixed") and reader["name"] != writer["name"]:
            yield f"{path}: named type renamed from {writer['name']} to {reader['name']}"

    def _record(self, reader: Any, writer: Any, path: str) -> Iterator[str]:
        written = {str(f["name"]): f for f in writer.get("fields", [])}
        for field in reader.get("fields", []):
            name = str(field["name"])
            source = written.get(name) or next(
                (written[a] for a in field.get("aliases", []) if a in written), None
            )
            where = f"{path}.{name}" if path else name
            if source is None:
                if "default" not in field:
                    yield f"{where}: new field without a default cannot read older data"
                continue
            yield from self.check(field["type"], source["type"], where)


def _branches(node: Any) -> list[Any]:
    return node if isinstance(node, list) else [node]


def _kind(node: Any) -> str:
    if isinstance(node, str):
        return node
    kind = node.get("type")
    return _kind(kind) if isinstance(kind, dict) else str(kind)


def _decimal(node: Any) -> tuple[int, int] | None:
    if isinstance(node, dict) and node.get("logicalType") == "decimal":
        return (int(node.get("precision", 0)), int(node.get("scale", 0)))
    return None


def _label(node: Any) -> str:
    if isinstance(node, list):
        return "[" + ", ".join(_label(b) for b in node) + "]"
    return _kind(node)


def backward_problems(reader: ContractSchema, writer: ContractSchema) -> list[str]:
    """Why `reader` cannot read data written with `writer` (empty when it can)."""
    return list(_Backward(reader.raw, writer.raw).check(reader.raw, writer.raw, ""))


def added_field_problems(newer: ContractSchema, older: ContractSchema) -> list[str]:
    """Fields new in `newer` that are not optional with default null (Iceberg can't add them)."""
    old_names = set(older.field_names())
    problems = []
    for field in newer.raw.get("fields", []):
        if field["name"] in old_names:
            continue
        kind = field["type"]
        if not (isinstance(kind, list) and "null" in kind and field.get("default", 0) is None):
            problems.append(
                f"{field['name']}: a field added after v1 must be [null, T], default null"
            )
    return problems


def check_versions(
    versions: Sequence[ContractSchema],
    level: Compatibility = Compatibility.BACKWARD_TRANSITIVE,
) -> list[str]:
    """Every incompatibility of each version with every earlier one, as `file: message` lines."""
    problems: list[str] = []
    for index, newer in enumerate(versions):
        for older in versions[:index]:
            found = added_field_problems(newer, older)
            if level in (Compatibility.BACKWARD_TRANSITIVE, Compatibility.FULL_TRANSITIVE):
                found += backward_problems(newer, older)
            if level in (Compatibility.FORWARD_TRANSITIVE, Compatibility.FULL_TRANSITIVE):
                found += backward_problems(older, newer)
            problems += [f"{newer.path}: vs v{older.version}: {p}" for p in found]
    return problems
