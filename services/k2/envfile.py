"""`.env.example`, generated from the settings classes: every `K2_*` setting, default, meaning.

The names, types and defaults come from the pydantic-settings classes themselves; the meaning
is the comment block written above each field in its class (the same text a reader of the
code sees), so the file cannot drift from the code: `python -m k2.envfile` writes it and a
unit test compares. Regenerate after changing a settings class: `./task env:example`.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from pathlib import Path
from typing import Final, Literal, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from k2.ingest.config import IngestSettings
from k2.settings import Endpoints, KafkaClientSecurity

ENV_EXAMPLE: Final = Path(__file__).resolve().parents[2] / ".env.example"
SETTINGS: Final[tuple[type[BaseSettings], ...]] = (Endpoints, KafkaClientSecurity, IngestSettings)

_HEADER = """\
# Every setting K2 reads from the environment, with its default and meaning.
# Generated from the settings classes by `./task env:example` (python -m k2.envfile): do not
# edit by hand; a unit test fails when this file and the classes differ.
#
# K2 reads no .env file itself. Commands find the stack's endpoints on their own: the K2_*
# variables when set, else the running local stack (its stack.json under K2_STACK_DIR or the
# default state dir). `eval "$(./task stack:env)"` exports a local stack's values.
"""


def _field_comments(cls: type[BaseModel]) -> dict[str, list[str] | None]:
    """The comment lines directly above each field's line in `cls`'s source.

    None for a field that has no comment of its own but directly follows another field: it
    belongs to that field's group (one comment above several fields), as in the source.
    """
    source_lines, _ = inspect.getsourcelines(cls)
    body = ast.parse(textwrap.dedent("".join(source_lines))).body[0]
    if not isinstance(body, ast.ClassDef):
        raise TypeError(f"{cls.__name__}'s source is not a class definition")
    comments: dict[str, list[str] | None] = {}
    previous_end = -1
    for node in body.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            block: list[str] = []
            line = node.lineno - 2  # the line above, 0-based
            while line >= 0 and source_lines[line].strip().startswith("#"):
                block.insert(0, source_lines[line].strip().removeprefix("#").strip())
                line -= 1
            follows = not block and node.lineno - 1 == previous_end
            comments[node.target.id] = None if follows else block
        previous_end = node.end_lineno or node.lineno
    return comments


_PLAIN_TYPES: Final[dict[object, str]] = {
    str: "text",
    SecretStr: "secret text",
    int: "integer",
    float: "number",
    bool: "true or false",
}


def _type_name(annotation: object) -> str:
    """A reader's name for a field's type: `one of A, B`, `integer`, `secret text`."""
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(choice) for choice in get_args(annotation))
    options = [a for a in get_args(annotation) if a is not type(None)]
    if options and len(options) < len(get_args(annotation)):
        return " or ".join(_type_name(a) for a in options) + " (none by default)"
    return _PLAIN_TYPES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _constraints(field: FieldInfo) -> str:
    names = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    found = [
        f"{names[key]} {value}"
        for meta in field.metadata
        for key in names
        if (value := getattr(meta, key, None)) is not None
    ]
    return f", {' and '.join(found)}" if found else ""


def _value(field: FieldInfo) -> str:
    if field.is_required():
        return ""
    default = field.get_default(call_default_factory=True)
    if default is None or isinstance(default, SecretStr):
        return ""
    if isinstance(default, bool):
        return str(default).lower()
    return str(default)


def _section(cls: type[BaseSettings]) -> list[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    doc = (inspect.getdoc(cls) or "").splitlines()[0]
    lines = ["", f"# --- {prefix}* : {cls.__module__}.{cls.__name__}: {doc}"]
    comments = _field_comments(cls)
    for name, field in cls.model_fields.items():
        comment = comments.get(name, [])
        if comment is not None:
            lines.append("")
            lines.extend(f"# {text}".rstrip() for text in comment)
        need = "required" if field.is_required() else "optional"
        lines.append(f"# {_type_name(field.annotation)}{_constraints(field)}; {need}")
        # An unset optional stays commented out: an empty value is a value, not "unset".
        unset = not field.is_required() and field.get_default() is None
        lines.append(f"{'# ' if unset else ''}{prefix}{name.upper()}={_value(field)}")
    return lines


def render() -> str:
    """The whole `.env.example` text."""
    lines = [_HEADER.rstrip("\n")]
    for cls in SETTINGS:
        lines.extend(_section(cls))
    return "\n".join(lines) + "\n"


def main() -> None:
    """Write `.env.example` at the repository root (or to stdout with `-`)."""
    text = render()
    if sys.argv[1:] == ["-"]:
        sys.stdout.write(text)
        return
    ENV_EXAMPLE.write_text(text)
    print(f"wrote {ENV_EXAMPLE}", file=sys.stderr)


if __name__ == "__main__":
    main()
