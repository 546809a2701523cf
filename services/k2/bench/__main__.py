"""`python -m k2.bench` (`task bench`): run the selected parts, print JSON, save it to results/.

Parts: hotpath, throughput, freshness, rss, startup, membership, dedup (`--only hotpath,rss`); `profile` (a
worker process sampled by py-spy, at most 400k records) and `spark` (Spark vs pyiceberg: scan +
OHLCV and compaction of the ASX tables) run only when named. Parts that
need a stack use the one named by K2_* variables, or start an ephemeral one for the run.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from k2.bench import (
    dedup,
    engines,
    freshness,
    hotpath,
    membership,
    profile,
    results,
    startup,
    throughput,
)
from k2.bench.environment import stack_under_test

PARTS = ("hotpath", "dedup", "throughput", "freshness", "rss", "startup", "membership")
# Only when named: profile slows the worker down; spark (Spark vs pyiceberg on the ASX tables)
# needs the `spark` extra and starts JVMs.
OPTIONAL_PARTS = ("profile", "spark")
STACK_PARTS = {"throughput", "freshness", "rss", "profile", "membership", "spark"}

app = typer.Typer(add_completion=False)


def _parts(only: str | None) -> list[str]:
    if not only:
        return list(PARTS)
    chosen = [p.strip() for p in only.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(PARTS) - set(OPTIONAL_PARTS))
    if unknown:
        raise typer.BadParameter(f"unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
    return chosen


def run_parts(
    chosen: list[str],
    *,
    records: int,
    hot_records: int,
    rates: tuple[int, ...],
    rate_seconds: float,
    logs: Path,
) -> dict[str, Any]:
    """Run `chosen` parts; the document `main` prints and saves."""
    parts: dict[str, Any] = {}
    started = results.now_iso()
    load_before = results.machine()
    if "hotpath" in chosen:
        parts["hotpath"] = hotpath.run(hot_records)
    if "dedup" in chosen:
        parts["dedup"] = dedup.run()
    if STACK_PARTS & set(chosen):
        with stack_under_test() as stack:
            if "throughput" in chosen:
                parts["throughput"] = throughput.run(stack, records, logs)
            elif "rss" in chosen:
                parts["throughput"] = throughput.run(stack, records, logs, (1,))
            if "freshness" in chosen:
                parts["freshness"] = freshness.run(stack.endpoints, rates, rate_seconds, logs)
            if "membership" in chosen:
                parts["membership"] = membership.run(stack, logs)
            if "profile" in chosen:
                parts["profile"] = profile.run(stack, min(records, 400_000), logs)
            if "spark" in chosen:
                parts["spark"] = engines.run(stack, logs)
    if "rss" in chosen:
        peaks = [mb for r in parts["throughput"]["runs"] for mb in r["peak_rss_mb"]]
        if "freshness" in parts:
            peaks.append(parts["freshness"]["peak_rss_mb"])
        parts["rss"] = {"peak_rss_mb": max(peaks), "source": "VmHWM of every worker process"}
    if "startup" in chosen:
        parts["startup"] = startup.run()
    return {
        "k2_bench": 1,
        "started_at": started,
        "finished_at": results.now_iso(),
        "command": " ".join(["python -m k2.bench", *sys.argv[1:]]),
        "machine_at_start": load_before,
        "machine_at_end": results.machine(),
        "parts": parts,
        "targets": results.targets(parts),
    }


@app.command()
def main(  # noqa: PLR0917  # typer options are parameters
    only: Annotated[
        str | None, typer.Option(help=f"Comma-separated parts: {','.join(PARTS)}.")
    ] = None,
    records: Annotated[int, typer.Option(help="Trades pre-loaded for throughput.")] = 2_000_000,
    hot_records: Annotated[int, typer.Option(help="Records for the hot-path part.")] = 200_000,
    rates: Annotated[str, typer.Option(help="Offered rates for freshness, msg/s.")] = "20000,50000",
    rate_seconds: Annotated[float, typer.Option(help="Seconds per offered rate.")] = 20.0,
    out: Annotated[Path, typer.Option(help="Results folder.")] = Path("results"),
) -> None:
    """Run the benchmarks; print the JSON and write it to `out/<timestamp>.json`."""
    logs = Path(tempfile.mkdtemp(prefix="k2-bench-logs-"))
    document = run_parts(
        _parts(only),
        records=records,
        hot_records=hot_records,
        rates=tuple(int(r) for r in rates.split(",")),
        rate_seconds=rate_seconds,
        logs=logs,
    )
    path = results.write(document, out)
    print(json.dumps(document, indent=2))
    print(f"written to {path}", file=sys.stderr)


if __name__ == "__main__":
    app()
