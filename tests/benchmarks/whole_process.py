"""Part 1: ``python manage.py <no-op>`` as a whole process, tracked vs plain ``BaseCommand``."""

from __future__ import annotations

import statistics

from tests.benchmarks.harness import Table, median, run_process

PLAIN, MANAGED = "noop_plain", "noop_managed"
TARGET = 1.05


def run(projects: dict, options) -> list[Table]:
    return [table(bench, options.pairs) for bench in projects.values()]


def table(bench, pairs: int) -> Table:
    """``pairs`` pairs of processes, one of each command, the order flipped every pair."""
    for name in (PLAIN, MANAGED):
        run_process(bench, name)  # warm the disk cache and .pyc files
    runs: dict[str, list] = {PLAIN: [], MANAGED: []}
    for pair in range(pairs):
        for name in (PLAIN, MANAGED) if pair % 2 == 0 else (MANAGED, PLAIN):
            runs[name].append(run_process(bench, name))
    ratios = [m.seconds / p.seconds for p, m in zip(runs[PLAIN], runs[MANAGED], strict=True)]
    ratio = median(ratios)
    plain_ms = median([r.seconds for r in runs[PLAIN]]) * 1000
    plain_rss = median([r.max_rss_mib for r in runs[PLAIN]])
    rows = []
    for label, name, times in (
        ("plain `BaseCommand`", PLAIN, "1.00 x"),
        ("`ManagedBaseCommand`", MANAGED, f"{ratio:.3f} x"),
    ):
        ms = median([r.seconds for r in runs[name]]) * 1000
        rss = median([r.max_rss_mib for r in runs[name]])
        rows.append(
            [
                f"{label} (`{name}`)",
                f"{ms:,.1f}",
                f"{ms - plain_ms:+,.1f}",
                times,
                f"{rss:,.1f}",
                f"{rss - plain_rss:+,.1f}",
            ]
        )
    low, _, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return Table(
        f"Whole process, {bench.backend}",
        [
            "command",
            "ms (median)",
            "ms added",
            "x plain (median ratio)",
            "peak RSS MiB",
            "RSS added MiB",
        ],
        rows,
        [
            f"`python manage.py <command>` in {pairs} pairs of fresh processes, one of each "
            "command, the order flipped every pair; system checks included (as a user runs "
            "it), stdout to /dev/null. x plain is the median of the pairs' ratios (tracked ÷ "
            "plain); ms and peak RSS are medians over the processes.",
            f"Pair ratios: from {min(ratios):.3f} to {max(ratios):.3f}, "
            f"quartiles {low:.3f} and {high:.3f}.",
            f"Target: at most {TARGET} x plain: {ratio:.3f} x: "
            f"{'met' if ratio <= TARGET else 'MISSED'}.",
        ],
    )
