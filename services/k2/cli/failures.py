"""The one mapping from K2's errors to the command line's exit codes and messages.

Every `k2` command raises; none catches to print or to pick an exit code. The root group
(`k2.cli.main.LazyGroup`) hands whatever escapes to `exit_for`, which prints one or two lines
on stderr (no traceback: set `K2_DEBUG=1` to see one) and exits with the code of the first
kind below that the error is. Unknown exceptions are bugs and keep their traceback.
"""

from __future__ import annotations

import os
from typing import Final

from rich.console import Console

from k2.errors import (
    AuthenticationError,
    ConfigError,
    K2Error,
    NotFoundError,
    ServiceUnavailableError,
    UsageError,
)
from k2.ingest.errors import DlqBudgetExceededError
from k2.service_errors import classify

# 2 is also what click uses for a malformed command line (unknown option, missing value).
EXIT_CODES: Final[tuple[tuple[type[K2Error], int], ...]] = (
    (UsageError, 2),
    (DlqBudgetExceededError, 3),
    (NotFoundError, 4),
    (ConfigError, 5),
    (ServiceUnavailableError, 6),
    (AuthenticationError, 7),
    (K2Error, 1),
)
DEBUG_VAR: Final = "K2_DEBUG"

_stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def exit_code(error: K2Error) -> int:
    """The exit code of `error`'s kind (1 for any other K2 error)."""
    return next(code for kind, code in EXIT_CODES if isinstance(error, kind))


def exit_for(error: BaseException) -> int | None:
    """Print `error` for a person and return its exit code; None when it is a bug to re-raise."""
    found = classify(error)
    if found is None or os.environ.get(DEBUG_VAR):
        return None
    _stderr.print(f"[bold red]error:[/] {found}", markup=True)
    return exit_code(found)
