"""Run the benchmarks and print one Markdown table per part.

    python -m tests.benchmarks                      # everything, default sizes
    python -m tests.benchmarks --parts process --pairs 20 --backends sqlite

Each backend gets a fresh, migrated database; every figure is measured next to
plain Django in the same run. See tests/benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests import backends
from tests.benchmarks import (
    batches,
    deploy,
    machine,
    output_capture,
    statements,
    status_at_scale,
    tenants,
    whole_process,
)
from tests.benchmarks.harness import project

# Each part takes {backend: migrated project} and the options, and returns tables.
PARTS = {
    "process": whole_process.run,
    "statements": statements.run,
    "batches": batches.run,
    "status": status_at_scale.run,
    "cadence": status_at_scale.run_cadence,
    "console": status_at_scale.run_console,
    "capture": output_capture.run,
    "deploy": deploy.run,
    "tenants": tenants.run,
}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)}"
    )
    parser.add_argument(
        "--backends", default=",".join(backends.ALL), help=f"from {', '.join(backends.ALL)}"
    )
    parser.add_argument("--pairs", type=int, default=20, help="process: pairs of processes")
    parser.add_argument(
        "--statement-runs", type=int, default=10, help="statements: runs per command"
    )
    parser.add_argument("--megabytes", type=int, default=100, help="capture: MiB written")
    parser.add_argument("--capture-runs", type=int, default=5, help="capture: runs per cell")
    parser.add_argument(
        "--history-rows",
        default="100000,1000000",
        help="status, cadence: history sizes, comma-separated (the largest compared to the "
        "smallest)",
    )
    parser.add_argument(
        "--commands", type=int, default=1000, help="status, cadence: managed commands"
    )
    parser.add_argument(
        "--few-commands",
        type=int,
        default=10,
        help="status, cadence: managed commands of the smallest history, for the queries",
    )
    parser.add_argument(
        "--status-runs",
        type=int,
        default=5,
        help="status, cadence: rounds, each measuring every size",
    )
    parser.add_argument("--chain", type=int, default=200, help="deploy: commands in the chain")
    parser.add_argument("--deploy-runs", type=int, default=3, help="deploy: runs per cell")
    parser.add_argument(
        "--batch-rows", type=int, default=100_000, help="batches: rows updated by each run"
    )
    parser.add_argument("--batch-runs", type=int, default=5, help="batches: runs per command")
    parser.add_argument("--tenants", type=int, default=1000, help="tenants: tenant schemas")
    parser.add_argument(
        "--tenant-commands", type=int, default=50, help="tenants: managed commands (at least 3)"
    )
    parser.add_argument(
        "--tenant-history", type=int, default=20, help="tenants: older copies of each run added"
    )
    parser.add_argument("--tenant-runs", type=int, default=3, help="tenants: runs per process")
    options = parser.parse_args(argv)
    options.history_rows = [int(size) for size in options.history_rows.split(",") if size]
    options.parts = [part.strip() for part in options.parts.split(",") if part.strip()]
    options.backends = [b.strip() for b in options.backends.split(",") if b.strip()]
    unknown = [p for p in options.parts if p not in PARTS]
    unknown += [b for b in options.backends if b not in backends.ALL]
    if unknown:
        parser.error(f"unknown part or backend: {', '.join(unknown)}")
    return options


def main(argv: list[str]) -> int:
    options = parse(argv)
    print("## Benchmarks\n")
    print(f"Machine: {machine.describe()}\n")
    print(f"Command: `{' '.join(['python -m tests.benchmarks', *argv])}`\n")
    started = time.monotonic()
    projects = {}
    with tempfile.TemporaryDirectory(prefix="mc-bench-") as tmp:
        try:
            for backend in options.backends:
                reason = backends.unavailable(backend)
                if reason:
                    print(f"Skipped {backend}: {reason}\n")
                    continue
                projects[backend] = project(backend, Path(tmp) / backend)
            if not projects:
                print("No backend could be reached.", file=sys.stderr)
                return 1
            for part in options.parts:
                for table in PARTS[part](projects, options):
                    print(table.render(), flush=True)
        finally:
            for bench in projects.values():
                bench.drop()
    print(f"Total time: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
