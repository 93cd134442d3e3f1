"""Renamed commands, orphans, stale and changed commands, in real ``manage.py`` processes.

``tests.renamesbefore`` holds ``fill_slugs`` (run_once), the first release;
``tests.renamesafter`` holds the next: ``populate_slugs``, which is ``fill_slugs``
renamed and moved (``replaces = ["renamesbefore.fill_slugs"]``), and
``after_populate``, which requires ``populate_slugs``.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.processes import TABLE

pytestmark = pytest.mark.processes

BEFORE = {"MC_TEST_EXTRA_APPS": "tests.renamesbefore"}
AFTER = {"MC_TEST_EXTRA_APPS": "tests.renamesafter"}
BOTH = {"MC_TEST_EXTRA_APPS": "tests.renamesbefore,tests.renamesafter"}
WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def run(project, *argv, env=AFTER):
    result = project.run(*argv, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def bodies(project):
    return [line.split()[0] for line in project.effect_lines()]


def test_a_renamed_command_is_not_run_again(project):
    run(project, "fill_slugs", env=BEFORE)
    skipped = run(project, "populate_slugs")
    assert re.fullmatch(
        f"Skipped 'populate_slugs': this run_once command already ran successfully as "
        f"'fill_slugs' \\(which it replaces\\) on {WHEN}. Pass --rerun to run it again.\n",
        skipped,
    )
    # Nor by the deploy step, which runs what requires it (met by the old name's run).
    planned = run(project, "run_pending_commands").splitlines()[0]
    assert planned.endswith(", after_populate") and "populate_slugs" not in planned
    renamed = [body for body in bodies(project) if "_slugs" in body or "populate" in body]
    assert renamed == ["fill_slugs", "after_populate"]
    assert "No pending run_once commands." in run(project, "run_pending_commands")
    # The status counts the old name's run as the command's own.
    [line] = [
        s for s in run(project, "show_managed_commands").splitlines() if "populate_slugs " in s
    ]
    assert re.fullmatch(f" \\[X\\] populate_slugs  succeeded {WHEN} \\(\\d+\\.\\d\\d s\\)", line)
    # --rerun still runs it, under its new name.
    run(project, "populate_slugs", "--rerun")
    assert bodies(project)[-1] == "populate_slugs"
    assert [r["status"] for r in project.rows("populate_slugs")] == ["succeeded"]
    assert [r["status"] for r in project.rows("fill_slugs")] == ["succeeded"]


def test_without_the_old_run_the_renamed_command_runs(project):
    run(project, "run_pending_commands")
    renamed = [body for body in bodies(project) if "populate" in body]
    assert renamed == ["populate_slugs", "after_populate"]


def test_the_old_command_still_installed_fails_the_checks(project):
    result = project.run("check", env=BOTH)
    assert result.returncode == 1
    assert (
        "populate_slugs: (managed_commands.E030) 'populate_slugs' replaces 'fill_slugs', but "
        "'fill_slugs' is still a command (of 'tests.renamesbefore'): its runs would count for "
        "both.\n\tHINT: Delete the old command 'fill_slugs' once it is renamed to "
        "'populate_slugs', or remove 'fill_slugs' from replaces."
    ) in result.stderr
    # A run checks the project first, so neither name runs meanwhile.
    refused = project.run("populate_slugs", env=BOTH)
    assert refused.returncode == 1 and "managed_commands.E030" in refused.stderr
    assert bodies(project) == []


def test_orphans_are_listed_then_pruned(project):
    run(project, "fill_slugs", env=BEFORE)
    run(project, "fill_slugs", "--rerun", env=BEFORE)
    run(project, "noop_once")
    # With the rename installed, the old name's runs are the new command's.
    assert run(project, "show_managed_commands", "--orphans") == (
        "No orphans: every command with recorded runs is installed.\n"
    )
    # Without it (the command was deleted), they are orphans.
    listed = run(project, "show_managed_commands", "--orphans", env={})
    assert re.fullmatch(
        "1 command with recorded runs but no code \\(deleted, or renamed without replaces\\):\n"
        f"  fill_slugs  2 runs, the last succeeded {WHEN}\n"
        "Delete their runs with: python manage.py prune_command_history --orphans\n",
        listed,
    )
    [found] = json.loads(run(project, "show_managed_commands", "--orphans", "--json", env={}))
    assert {k: found[k] for k in ("name", "app_label", "runs", "last_status")} == {
        "name": "fill_slugs",
        "app_label": "renamesbefore",
        "runs": 2,
        "last_status": "succeeded",
    }
    assert run(project, "prune_command_history", "--orphans", "--dry-run", env={}) == (
        "Would delete 2 runs of 1 command no longer installed (fill_slugs).\n"
    )
    assert len(project.rows("fill_slugs")) == 2
    assert run(project, "prune_command_history", "--orphans", env={}) == (
        "Deleted 2 runs of 1 command no longer installed (fill_slugs).\n"
    )
    assert project.rows("fill_slugs") == []
    assert [r["command_name"] for r in project.rows()] == ["noop_once"]
    assert "No orphans" in run(project, "show_managed_commands", "--orphans", env={})


def test_prune_asks_for_days_or_orphans(project):
    result = project.run("prune_command_history")
    assert result.returncode == 2
    assert "one of the arguments --days --orphans is required" in result.stderr


def test_stale_lists_the_commands_done_long_ago(project):
    run(project, "noop_once")
    run(project, "once")
    project.sql(
        f"UPDATE {TABLE} SET executed_at = ? WHERE command_name = ?",
        ("2020-01-01 00:00:00", "noop_once"),
    )
    stale = run(project, "show_managed_commands", "--stale", "30")
    # once was done just now: not stale.
    assert re.fullmatch(
        f"testapp\n \\[X\\] noop_once  succeeded {WHEN} \\(\\d+\\.\\d\\d s\\)\n", stale
    )
    assert "No run_once command was done more than 100000 days ago." in run(
        project, "show_managed_commands", "--stale", "100000"
    )
    bad = project.run("show_managed_commands", "--stale", "-1")
    assert bad.returncode == 2
    assert "argument --stale: DAYS is a number of days, 0 or more, not '-1'." in bad.stderr


def test_changed_commands_are_listed_and_named_after_migrate(project):
    run(project, "noop_once")
    run(project, "once")
    assert "No done run_once command changed" in run(project, "show_managed_commands", "--changed")
    # As if the file of noop_once had been edited since its run.
    project.sql(
        f"UPDATE {TABLE} SET source_hash = ? WHERE command_name = ?",
        ("0" * 64, "noop_once"),
    )
    changed = run(project, "show_managed_commands", "--changed")
    assert re.fullmatch(
        r"testapp\n \[X\] noop_once  succeeded \S+ \S+ \(\d+\.\d\d s\); source changed since "
        r"its last successful run\nRerun them with:\n  python manage.py noop_once --rerun\n",
        changed,
    )
    notice = run(project, "migrate")
    assert (
        "Done run_once commands whose source changed since their last successful run: "
        "noop_once\n  Rerun those whose change matters with:\n"
        "    python manage.py noop_once --rerun\n"
    ) in notice


def test_the_graph_cannot_be_narrowed_to_changed_or_stale_commands(project):
    both = project.run("show_managed_commands", "--changed", "--stale", "3")
    assert both.returncode == 2
    assert "argument --stale: not allowed with argument --changed" in both.stderr
    graph = project.run("show_managed_commands", "--graph", "--stale", "3")
    assert (graph.returncode, graph.stderr) == (
        1,
        "CommandError: --stale selects lines of the list; leave out --graph.\n",
    )
