"""Apps of many generated commands, written to a temporary directory (never committed).

``install()`` writes them; ``using()`` gives a copy of a benchmark project whose
processes load only those apps (``MC_BENCH_GENERATED_*``, read by the benchmark
settings), so a part counts exactly its own commands.
"""

from __future__ import annotations

import copy
from pathlib import Path

STATUS_APP = "mc_bench_status"
CHAIN_APP = "mc_bench_chain"
MIGRATION = "contenttypes.0002_remove_content_type_name"

_MANAGED = """from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Generated for the benchmarks."
    run_once = {run_once}
    requires = {requires!r}
    expected_every = {expected_every!r}

    def handle(self, *args, **options):
        pass
"""
_PLAIN = """from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Generated for the benchmarks: does nothing, untracked."

    def handle(self, *args, **options):
        pass
"""
_PLAIN_ALL = """from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Call the {count} plain chain commands in order, as run_pending_commands would."

    def handle(self, *args, **options):
        for number in range({count}):
            call_command(f"bench_plain_{{number:03d}}", stdout=self.stdout, stderr=self.stderr)
"""


def status_name(number: int) -> str:
    return f"bench_status_{number:03d}"


def is_run_once(number: int, period: int | None = None) -> bool:
    """3 generated status commands in 4 are run_once; none of the recurring ones."""
    return period is None and number % 4 != 0


def expected_every(number: int, period: int | None) -> int | None:
    """The cadence of a recurring status command (``period``: seconds between its runs
    in the seeded history; None for the status part's commands, which declare none).

    1 in 10 expects a run four times as often as its runs come (so it is late, its
    newest success being at least half a period old); the others, three times as
    rarely (on time, however old the seeding gets during the benchmark)."""
    if period is None:
        return None
    return period // 4 if number % 10 == 5 else period * 3


def numbers_sql(numbers: list[int], of: str) -> str:
    """An SQL condition true where ``of`` (an SQL expression) is one of ``numbers``:
    how the seeded history says what a predicate above says of each command."""
    return f"{of} IN ({', '.join(map(str, numbers))})" if numbers else "1 = 0"


def chain_name(number: int) -> str:
    return f"bench_chain_{number:03d}"


def install(directory: Path, commands: int, chain: int, period: int | None = None) -> Path:
    """Write the status app (``commands`` managed commands and ``bench_noop``) and the
    chain app (``chain`` run_once commands each requiring the previous one, their
    plain twins ``bench_plain_NNN`` and ``bench_plain_all``) under ``directory``.

    With ``period``, the status commands are recurring (``expected_every()``)."""
    status = {"bench_noop": _PLAIN}
    for number in range(commands):
        # A realistic mix: 3 in 4 run_once, some requiring another command or a migration.
        requires = [status_name(number - 1)] if number % 5 == 1 else []
        requires += [MIGRATION] if number % 50 == 7 else []
        status[status_name(number)] = _MANAGED.format(
            run_once=is_run_once(number, period),
            requires=requires,
            expected_every=expected_every(number, period),
        )
    deploy = {"bench_plain_all": _PLAIN_ALL.format(count=chain)}
    for number in range(chain):
        requires = [chain_name(number - 1)] if number else []
        deploy[chain_name(number)] = _MANAGED.format(
            run_once=True, requires=requires, expected_every=None
        )
        deploy[f"bench_plain_{number:03d}"] = _PLAIN
    for app, modules in ((STATUS_APP, status), (CHAIN_APP, deploy)):
        package = directory / app / "management" / "commands"
        package.mkdir(parents=True, exist_ok=True)
        for init in (directory / app, package.parent, package):
            (init / "__init__.py").touch()
        for name, source in modules.items():
            (package / f"{name}.py").write_text(source)
    return directory


def using(bench, directory: Path, app: str):
    """A copy of ``bench`` (same database) whose processes install only ``app`` of the
    test apps."""
    view = copy.copy(bench)
    view.env = {
        **bench.env,
        "MC_BENCH_GENERATED_PATH": str(directory),
        "MC_BENCH_GENERATED_APPS": app,
    }
    return view
