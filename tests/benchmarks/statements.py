"""Part 2: the statements one run sends, next to plain Django and the peers.

The parent starts one child per backend (``python -m tests.benchmarks.statements``)
with the benchmark settings on a fresh database. The child calls each variant's
no-op command by ``call_command()`` a few times and counts every statement
Django logs on the connection; nothing is timed.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from tests.benchmarks.harness import Table, run_module


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    command: str
    target: int | None = None  # at most this many statements per run
    needs: str = ""  # module of a peer that must be installed
    pending: bool = False  # its history is deleted (not counted) before each run


VARIANTS = (
    Variant("plain", "plain `BaseCommand`", "noop_plain"),
    Variant("managed", "`ManagedBaseCommand`, repeatable", "noop_managed", 2),
    Variant(
        "once_pending", "`ManagedBaseCommand`, run_once, pending", "noop_once", 2, pending=True
    ),
    Variant("once_done", "`ManagedBaseCommand`, run_once, already done (skips)", "noop_once", 1),
    Variant(
        "dmc",
        "django-managed-commands `ManagedCommand`",
        "peer_dmc_noop",
        needs="django_managed_commands",
    ),
    Variant(
        "dmc_once_pending",
        "django-managed-commands, run_once, pending",
        "peer_dmc_once",
        needs="django_managed_commands",
        pending=True,
    ),
    Variant(
        "dmc_once_done",
        "django-managed-commands, run_once, already done (skips)",
        "peer_dmc_once",
        needs="django_managed_commands",
    ),
    Variant("log", "django-command-log `LoggedCommand`", "peer_log_noop", needs="command_log"),
)


# -- the child ------------------------------------------------------------------
def _measure(runs: int) -> dict[str, object]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from managed_commands.models import CommandExecution

    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process

    def forget(variant: Variant) -> None:
        """Delete the variant's history, so that its run_once command is pending again."""
        if variant.needs == "django_managed_commands":
            from django_managed_commands.models import CommandExecution as TheirExecution

            TheirExecution.objects.filter(command_name=f"peers.{variant.command}").delete()
        else:
            CommandExecution.objects.filter(command_name=variant.command).delete()

    found = {}
    for variant in (v for v in VARIANTS if not v.needs or find_spec(v.needs)):
        call_command(variant.command, stdout=sink, stderr=sink)  # imports it; run_once: done
        kinds: Counter[str] = Counter()
        for _ in range(runs):
            if variant.pending:
                forget(variant)
            with CaptureQueriesContext(connection) as captured:
                call_command(variant.command, stdout=sink, stderr=sink)
            kinds.update(_kind(query["sql"]) for query in captured)
        found[variant.key] = {kind: n / runs for kind, n in sorted(kinds.items())}
    version = ".".join(map(str, connection.get_database_version()))
    return {"vendor": connection.vendor, "version": version, "variants": found}


def _kind(sql: str) -> str:
    # MariaDB's driver keeps no text of a statement that failed: Django logs "None".
    return "failed" if sql == "None" else sql.lstrip().split(None, 1)[0].upper()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    Path(options.out).write_text(json.dumps(_measure(options.runs)))


# -- the parent -----------------------------------------------------------------
def run(projects: dict, options) -> list[Table]:
    return [
        table(
            backend,
            options.statement_runs,
            run_module(bench, __name__, "--runs", str(options.statement_runs)),
        )
        for backend, bench in projects.items()
    ]


def table(backend: str, runs: int, result: dict) -> Table:
    from tests.benchmarks.settings import PEER_MODULES

    rows, verdicts = [], []
    for variant in VARIANTS:
        kinds = result["variants"].get(variant.key)
        if kinds is None:
            rows.append(
                [
                    variant.label,
                    f"not installed (`pip install {PEER_MODULES[variant.needs]}`)",
                    "",
                    "",
                ]
            )
            continue
        count = sum(kinds.values())
        target = "" if variant.target is None else f"at most {variant.target}"
        rows.append(
            [
                variant.label,
                f"{count:g}",
                ", ".join(f"{n:g} {kind}" for kind, n in kinds.items()) or "none",
                target,
            ]
        )
        if variant.target is not None:
            verdict = "met" if count <= variant.target else "MISSED"
            verdicts.append(f"{variant.label}: {count:g} (at most {variant.target}): {verdict}")
    return Table(
        f"Statements per run, {backend} ({result['vendor']} {result['version']})",
        ["command", "statements per run", "which", "target"],
        rows,
        [
            f"`call_command()` of a no-op command, {runs} runs of each after a first one (which "
            "makes a run_once command done); a pending variant's history is deleted before "
            "each run, uncounted. Statements: every one Django logs on the connection "
            "(`CaptureQueriesContext`, as `assertNumQueries` counts them), a failing one "
            "included, and the BEGIN, COMMIT and SAVEPOINT it logs for the transactions it "
            "opens; a statement in autocommit commits by itself and logs no COMMIT.",
            "Target: " + "; ".join(verdicts) + ".",
        ],
    )


if __name__ == "__main__":
    main()
