"""The `k2` command line imports a command's module only when that command runs."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from k2.cli.main import COMMANDS, app


def test_help_lists_every_command_in_order() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})

    assert result.exit_code == 0, result.output
    first_words = [line.replace("│", " ").split()[:1] for line in result.output.splitlines()]
    assert [w[0] for w in first_words if w and w[0] in COMMANDS] == list(COMMANDS)


def test_a_mistyped_command_gets_a_suggestion() -> None:
    result = CliRunner().invoke(app, ["ingst", "run"], env={"COLUMNS": "120"})

    assert result.exit_code == 2
    assert "Did you mean 'ingest'?" in result.output


def test_an_ingest_worker_imports_no_other_command() -> None:
    # A fresh interpreter: this one has imported everything already.
    probe = (
        "import sys, typer\n"
        "from k2.cli.main import app\n"
        "typer.main.get_command(app).commands['ingest']\n"
        "print('\\n'.join(sys.modules))\n"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.split()
    )

    assert "k2.cli.ingest" in loaded
    others = {module.split(":")[0] for name, module in COMMANDS.items() if name != "ingest"}
    assert others & loaded == set()
    # The worker reads schemas by id itself: confluent's registry client costs ~0.3 s to import.
    assert "confluent_kafka.schema_registry" not in loaded
