"""Part 2: ``python manage.py <noop>`` as a whole process, managed vs plain."""

from __future__ import annotations

from tests.benchmarks.harness import Table, median, ratio, run_process

COMMANDS = (("plain `BaseCommand`", "noop_plain"), ("`ManagedBaseCommand`", "noop_managed"))


def run(projects: dict, options) -> list[Table]:
    return [table(bench, options.process_runs) for bench in projects.values()]


def table(bench, runs: int) -> Table:
    """Median wall time and peak RSS of ``runs`` processes of each command, alternated."""
    timings: dict[str, list[float]] = {name: [] for _, name in COMMANDS}
    memory: dict[str, list[float]] = {name: [] for _, name in COMMANDS}
    for _, name in COMMANDS:
        run_process(bench, name)  # warm the disk cache and .pyc files
    for _ in range(runs):
        for _, name in COMMANDS:
            result = run_process(bench, name)
            timings[name].append(result.seconds)
            memory[name].append(result.max_rss_mib)
    plain = median(timings["noop_plain"])
    plain_rss = median(memory["noop_plain"])
    rows = []
    for label, name in COMMANDS:
        seconds = median(timings[name])
        rss = median(memory[name])
        rows.append(
            [
                f"{label} (`{name}`)",
                f"{seconds * 1000:,.1f}",
                f"{(seconds - plain) * 1000:+,.1f}",
                ratio(seconds, plain),
                f"{rss:,.1f}",
                f"{rss - plain_rss:+,.1f}",
            ]
        )
    return Table(
        f"Whole process, {bench.backend}",
        ["command", "ms (median)", "ms added", "x plain", "peak RSS MiB", "RSS added MiB"],
        rows,
        [
            f"`python manage.py <command>` started {runs} times each, alternating, "
            "system checks included (as a user runs it); median wall time and peak RSS."
        ],
    )
