"""Part 5: a command writing a lot through ``self.stdout`` and ``print()``, managed vs plain.

Each run is a fresh ``manage.py`` process with stdout on /dev/null, so its peak
RSS is its own. Two volumes show whether the capture's memory grows with the
volume written.
"""

from __future__ import annotations

from tests.benchmarks.harness import Table, median, ratio, run_process

COMMANDS = (
    ("plain `BaseCommand`", "bench_volume_plain"),
    ("`ManagedBaseCommand`", "bench_volume_managed"),
)
TIME_TARGET = 1.15
RSS_TARGET_MIB = 32


def run(projects: dict, options) -> list[Table]:
    return [table(bench, options.megabytes, options.capture_runs) for bench in projects.values()]


def table(bench, megabytes: int, runs: int) -> Table:
    volumes = sorted({max(1, megabytes // 10), megabytes})
    rows = []
    notes = [
        f"{runs} fresh `manage.py` processes per cell, alternating; stdout to /dev/null "
        "(block-buffered, the same for both); median wall time (process start included) "
        "and median peak RSS (`ru_maxrss` of that child, via `os.wait4`). The body writes "
        "1 KiB lines, alternating `self.stdout.write()` and `print()`."
    ]
    added: dict[int, float] = {}
    for volume in volumes:
        timings: dict[str, list[float]] = {name: [] for _, name in COMMANDS}
        memory: dict[str, list[float]] = {name: [] for _, name in COMMANDS}
        for _ in range(runs):
            for _, name in COMMANDS:
                result = run_process(bench, name, "--megabytes", str(volume))
                timings[name].append(result.seconds)
                memory[name].append(result.max_rss_mib)
        plain, managed = (median(timings[name]) for _, name in COMMANDS)
        plain_rss, managed_rss = (median(memory[name]) for _, name in COMMANDS)
        for (label, _), seconds, rss in zip(
            COMMANDS, (plain, managed), (plain_rss, managed_rss), strict=True
        ):
            rows.append(
                [
                    f"{volume} MiB",
                    label,
                    f"{seconds:,.2f}",
                    ratio(seconds, plain),
                    f"{rss:,.1f}",
                    f"{rss - plain_rss:+,.1f}",
                ]
            )
        added[volume] = managed - plain
        met = managed / plain <= TIME_TARGET and managed_rss - plain_rss <= RSS_TARGET_MIB
        notes.append(
            f"Target at {volume} MiB: {managed / plain:.2f} x plain time (<= {TIME_TARGET}) and "
            f"{managed_rss - plain_rss:+.1f} MiB RSS (<= {RSS_TARGET_MIB}): "
            f"{'met' if met else 'MISSED'}."
        )
    if len(volumes) == 2:
        low, high = volumes
        per_mib = (added[high] - added[low]) / (high - low)
        notes.append(
            f"Time added per MiB captured: {per_mib * 1000:.2f} ms; the rest of the time added "
            f"({(added[low] - per_mib * low) * 1000:.0f} ms) is the run's fixed cost in a fresh "
            "process (its two commits, the first queries), as in the whole-process table."
        )
    return Table(
        f"Output capture, {bench.backend}",
        ["written", "command", "seconds (median)", "x plain", "peak RSS MiB", "RSS added MiB"],
        rows,
        notes,
    )
