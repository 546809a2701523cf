"""Commands find the running local stack by its state directory when no K2_* is set."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from k2.cli.main import app
from k2.discovery import find_endpoints, find_stack_env
from k2.errors import StackNotFoundError
from k2.settings import Endpoints
from k2stack.local.stack import MANIFEST, LocalStack

# The run's own local stack, found through its state directory.
pytestmark = [pytest.mark.integration, pytest.mark.local_stack]


def _no_endpoints() -> dict[str, str | None]:
    return {f"K2_{name.upper()}": None for name in Endpoints.model_fields}


def test_a_running_local_stack_is_found_by_its_state_dir(
    stack: Endpoints, stack_dir: Path, unique: str
) -> None:
    found = find_endpoints({"K2_STACK_DIR": str(stack_dir)})

    assert found == Endpoints.from_env(LocalStack(stack_dir, log=lambda _: None).env())
    # A command with no K2_* at all reaches that stack's catalog: the table it asks for is
    # the only thing missing.
    result = CliRunner().invoke(
        app,
        ["query", "ohlcv", "--symbol", "BHP", "--start", "2014-03-10", "--prefix", unique],
        env={**_no_endpoints(), "K2_STACK_DIR": str(stack_dir)},
    )
    assert result.exit_code == 4, result.output
    assert f"no table {unique}market.trades" in result.output


def test_a_stopped_local_stack_says_to_start_it(
    stack: Endpoints, stack_dir: Path, tmp_path: Path
) -> None:
    # The same manifest with none of its processes: what `task stack:down` leaves behind.
    shutil.copy(stack_dir / MANIFEST, tmp_path / MANIFEST)

    with pytest.raises(StackNotFoundError, match=r"is not running .*kafka.*stopped"):
        find_stack_env({"K2_STACK_DIR": str(tmp_path)})
    result = CliRunner().invoke(
        app,
        ["dlq", "inspect", "--table", "trades"],
        env={**_no_endpoints(), "K2_STACK_DIR": str(tmp_path)},
    )
    assert result.exit_code == 5, result.output
    assert result.output.splitlines() == [
        f"error: the local stack at {tmp_path} is not running "
        f"({', '.join(sorted(s.service.value for s in LocalStack(tmp_path).status()))} stopped);",
        "start it with `./task stack:up`",
    ]
