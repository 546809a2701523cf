"""User errors end in one or two lines and the exit code of their kind, never a traceback.

These paths need no running stack: a missing or stopped stack, half-set variables, bad input
rejected before any service is asked, and services that do not answer (closed ports).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from k2.cli.failures import EXIT_CODES, exit_code
from k2.cli.main import app
from k2.errors import (
    AuthenticationError,
    ConfigError,
    K2Error,
    NotFoundError,
    ServiceUnavailableError,
    StackNotFoundError,
    UsageError,
)
from k2.ingest.errors import DlqBudgetExceededError
from k2.net import free_port
from k2.query.errors import InvalidTimeRangeError, NoRowsError, UnknownTableError
from k2.settings import Endpoints

QUERY = ["query", "trades", "--symbol", "BHP", "--start", "2014-03-10T10:00"]


def _run(args: list[str], env: dict[str, str]) -> Result:
    # Every K2_* variable the test does not give is unset: the machine's own must not leak in.
    cleared: dict[str, str | None] = {f"K2_{name.upper()}": None for name in Endpoints.model_fields}
    cleared.update({"K2_STACK_DIR": None, "K2_DEBUG": None, "COLUMNS": "200"})
    cleared.update(env)
    return CliRunner().invoke(app, args, env=cleared)


def _assert_short(result: Result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, result.output
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in " ".join(lines)


def _dead_endpoints() -> dict[str, str]:
    """Every K2_* endpoint setting, services at loopback ports where nothing listens."""
    env = {}
    for name in Endpoints.model_fields:
        if "bootstrap" in name:
            value = f"127.0.0.1:{free_port()}"
        elif name.endswith(("_url", "_uri", "_endpoint")):
            value = f"http://127.0.0.1:{free_port()}"
        elif name.endswith("_dsn"):
            value = f"postgresql://k2:pw@127.0.0.1:{free_port()}/k2"
        else:  # keys and credentials
            value = "k2-test:secret"
        env[f"K2_{name.upper()}"] = value
    return env


def test_no_stack_says_what_to_run(tmp_path: Path) -> None:
    result = _run(QUERY, {"K2_STACK_DIR": str(tmp_path / "none")})

    _assert_short(result, 5, "no K2 stack found", str(tmp_path / "none"), "./task stack:up")


def test_an_unreadable_stack_manifest_says_to_start_a_stack(tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text("{not json")

    result = _run(["dlq", "inspect", "--table", "trades"], {"K2_STACK_DIR": str(tmp_path)})

    _assert_short(result, 5, f"the local stack at {tmp_path} is unusable", "stack:up")


def test_half_set_variables_name_the_missing_ones(tmp_path: Path) -> None:
    result = _run(
        ["bootstrap"],
        {"K2_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "K2_STACK_DIR": str(tmp_path)},
    )

    _assert_short(result, 5, "K2_SCHEMA_REGISTRY_URL", "K2_PROMETHEUS_URL", "stack:env")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--end", "2014-03-09"], "must be before --end"),
        (["--end", "yesterday"], "'yesterday' is not an ISO-8601"),
        (["--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_bad_times_are_usage_errors(args: list[str], fragment: str) -> None:
    # Checked before any service is asked: no stack needed.
    result = _run([*QUERY, *args], {})

    _assert_short(result, 2, fragment)


def test_a_stopped_catalog_is_service_unavailable() -> None:
    env = _dead_endpoints()

    result = _run(QUERY, env)

    _assert_short(result, 6, env["K2_ICEBERG_CATALOG_URI"], "unavailable")


def test_a_stopped_kafka_is_service_unavailable() -> None:
    result = _run(["dlq", "inspect", "--table", "trades"], _dead_endpoints())

    _assert_short(result, 6, "Kafka did not answer", "./task stack:status")


def test_a_missing_output_directory_is_a_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "trades.parquet"

    result = _run(["generate", "--count", "10", "--output", str(target / "x")], {})

    # generate creates its output directory: an existing file in the way cannot be one.
    assert result.exit_code == 0, result.output
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a directory")
    result = _run(["generate", "--count", "10", "--output", str(blocked)], {})
    _assert_short(result, 2, str(blocked))


def test_a_malformed_tick_is_a_usage_error() -> None:
    result = _run(["generate", "--tick", "cent", "--output", "/tmp/unused"], {})

    _assert_short(result, 2, "--tick 'cent' is not a decimal number")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidTimeRangeError("t"), 2),
        (UsageError("u"), 2),
        (DlqBudgetExceededError("d"), 3),
        (UnknownTableError("t"), 4),
        (NoRowsError("n"), 4),
        (NotFoundError("n"), 4),
        (StackNotFoundError("s"), 5),
        (ConfigError("c"), 5),
        (ServiceUnavailableError("s"), 6),
        (AuthenticationError("a"), 7),
        (K2Error("k"), 1),
    ],
)
def test_each_kind_has_one_exit_code(error: K2Error, code: int) -> None:
    assert exit_code(error) == code


def test_the_exit_codes_are_distinct_per_kind() -> None:
    codes = [code for _, code in EXIT_CODES]
    assert len(codes) == len(set(codes))
    assert EXIT_CODES[-1] == (K2Error, 1)  # the catch-all comes last


def test_k2_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = _run(QUERY, {"K2_STACK_DIR": str(tmp_path), "K2_DEBUG": "1"})

    assert result.exit_code == 1
    assert isinstance(result.exception, StackNotFoundError)
