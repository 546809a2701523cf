"""`k2`: the platform's command line. Each command group lives in its own module.

A command's module is imported only when that command runs (or when help or shell completion
lists every command): `k2 ingest run` starts an ingest worker without importing the query,
replay, DLQ and contracts commands' dependencies, which cost ~0.15 s of every worker's start.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any, Final

import typer
from typer._click import ClickException, Context  # typer vendors click
from typer.core import TyperGroup

if TYPE_CHECKING:
    from typer._click import Command

# Command name -> "module:attribute", in the order help lists them: a `typer.Typer` is a
# command group, a function a single command.
COMMANDS: Final = {
    "bootstrap": "k2.cli.bootstrap:bootstrap",
    "generate": "k2.cli.generate:generate",
    "maintain": "k2.cli.maintain:maintain",
    "contracts": "k2.cli.contracts:app",
    "ingest": "k2.cli.ingest:app",
    "dlq": "k2.cli.dlq:app",
    "replay": "k2.cli.replay:app",
    "query": "k2.cli.query:app",
}


def load_command(name: str) -> Command:
    """Import command `name` and build it as `add_typer(app, name=…)` / `command(name)` would."""
    module, attribute = COMMANDS[name].split(":")
    target = getattr(importlib.import_module(module), attribute)
    holder = typer.Typer()
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    return typer.main.get_group(holder).commands[name]


class _LazyCommands(MutableMapping[str, "Command"]):
    """Commands by name, each imported on first access; the names alone import nothing, so
    typo suggestions ("Did you mean 'ingest'?") cost no import either."""

    def __init__(self, added: MutableMapping[str, Command]) -> None:
        self._loaded: dict[str, Command] = dict(added)

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            self._loaded[name] = load_command(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*COMMANDS, *self._loaded]))

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._loaded))


class LazyGroup(TyperGroup):
    """The root group: `COMMANDS`, imported on demand; K2's errors become exit codes here."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands(self.commands)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except Exception as e:
            from k2.cli.failures import exit_for

            code = exit_for(e)
            if code is None:
                raise
            raise typer.Exit(code) from e


app = typer.Typer(
    cls=LazyGroup,
    no_args_is_help=True,
    help="K2: market data from Kafka into Apache Iceberg.",
)


@app.callback()
def _root() -> None:
    # Typer builds a group (our LazyGroup) only for an app with a callback or commands of its
    # own; this callback takes no options and does nothing.
    pass
