"""Where the `contracts/` directory is: one lookup shared by schemas and catalogue."""

from __future__ import annotations

import os
from pathlib import Path

CONTRACTS_DIR_ENV = "K2_CONTRACTS_DIR"
# services/k2/contracts/paths.py -> repository root is three levels above the package dir.
_REPO_CONTRACTS = Path(__file__).resolve().parents[3] / "contracts"


def contracts_dir() -> Path:
    """The contracts directory: `$K2_CONTRACTS_DIR` if set, else `<repo>/contracts`."""
    override = os.environ.get(CONTRACTS_DIR_ENV)
    return Path(override) if override else _REPO_CONTRACTS


def schemas_dir(root: Path | None = None) -> Path:
    """The directory holding `<name>.v<N>.avsc` files."""
    return (root or contracts_dir()) / "schemas"
