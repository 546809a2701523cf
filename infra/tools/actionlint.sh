#!/usr/bin/env bash
# Lint K2's GitHub Actions workflows (.github/workflows/*.yml) with actionlint, pinned and built
# from the Go module proxy on first use into K2's download cache (no release binary: those
# downloads are not reachable from K2's machines). `task lint` runs it.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=v1.7.12
CACHE=${K2_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/k2}
BIN="$CACHE/tools/actionlint-$VERSION"

if [ ! -x "$BIN/actionlint" ]; then
  command -v go >/dev/null || { echo "actionlint: needs Go (go install) to build $VERSION" >&2; exit 1; }
  echo "[k2] building actionlint $VERSION from the Go module proxy into $BIN" >&2
  mkdir -p "$BIN"
  # -trimpath: the binary does not depend on where it was built; GOFLAGS=-mod=mod: no vendoring.
  GOBIN="$BIN" GOFLAGS=-mod=mod go install -trimpath "github.com/rhysd/actionlint/cmd/actionlint@$VERSION"
fi

exec "$BIN/actionlint" -no-color "$@"
