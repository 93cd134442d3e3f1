"""``manage.py show_managed_commands``: what ``showmigrations`` is for migrations."""

from __future__ import annotations

import json
import math
from argparse import ArgumentTypeError
from typing import Any

from django.core.management.base import CommandError, CommandParser

from managed_commands import listing
from managed_commands.formatting import plural
from managed_commands.listing import ReportingCommand
from managed_commands.loader import add_arguments, from_options
from managed_commands.recorder import history_recorder
from managed_commands.status import (
    CommandState,
    alert_late,
    orphans,
    readable_statuses,
    recover_gone,
)
from managed_commands.tenants import statuses_by_tenant


def _days(value: str) -> float:
    try:
        days = float(value)
    except ValueError:
        days = math.nan
    if not days >= 0:
        raise ArgumentTypeError(f"DAYS is a number of days, 0 or more, not {value!r}.")
    return days


def _empty(
    pending: bool, changed: bool = False, stale: float | None = None, late: bool = False
) -> str:
    """What the list says when no command is on it."""
    if late:
        return "No recurring command is late, failing or overrunning."
    if changed:
        return "No done run_once command changed since its last successful run."
    if stale is not None:
        return f"No run_once command was done more than {stale:g} days ago."
    return "No pending run_once commands." if pending else "No managed commands."


class Command(ReportingCommand):
    help = (
        "List the managed commands by app: [X] done, [ ] pending, [F] failed last time, "
        "[R] running now, [G] recorded running but its process is gone, [Q] queued for a task "
        "worker, [L] late, [O] overrunning, [-] repeatable; with their requires, last run and "
        "changed source."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group()
        which.add_argument(
            "--pending", action="store_true", help="Only the pending run_once commands."
        )
        which.add_argument(
            "--changed",
            action="store_true",
            help="Only the done run_once commands whose source changed since their last "
            "successful run.",
        )
        which.add_argument(
            "--stale",
            type=_days,
            metavar="DAYS",
            help="Only the run_once commands done more than DAYS days ago: candidates "
            "for deletion.",
        )
        which.add_argument(
            "--orphans",
            action="store_true",
            help="The command names with recorded runs but no code any more (deleted, or "
            "renamed without replaces), with their last run, in every scope.",
        )
        which.add_argument(
            "--late",
            action="store_true",
            help="Only the recurring commands (expected_every, expected_duration_max) that are "
            "late, failing or overrunning.",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Exit with status 1 when any run_once command is pending (a deploy or CI gate).",
        )
        parser.add_argument(
            "--check-cadence",
            action="store_true",
            help="Exit with status 1 when any recurring command is late, failing or overrunning, "
            "one line each on stderr (a monitoring probe).",
        )
        parser.add_argument(
            "--all-tenants",
            action="store_true",
            help="With django-tenants: a matrix of the commands by tenant (public left out), "
            "each cell done, pending, failed, running, gone, or - (repeatable).",
        )
        add_arguments(parser, "the commands")
        output = parser.add_mutually_exclusive_group()
        output.add_argument(
            "--json", action="store_true", dest="as_json", help="Print a JSON list of objects."
        )
        output.add_argument(
            "--graph",
            action="store_true",
            help="Print the requires graph of every command as Mermaid text.",
        )

    def handle(
        self,
        *,
        pending: bool,
        changed: bool,
        stale: float | None,
        orphans: bool,
        late: bool,
        check: bool,
        check_cadence: bool,
        all_tenants: bool,
        as_json: bool,
        graph: bool,
        **options: Any,
    ) -> None:
        selection = from_options(options)
        narrowing = [
            option
            for option, given in (
                ("--phase", options.get("phase")),
                ("--tag", options.get("tag")),
                ("--changed", changed),
                ("--stale", stale is not None),
                ("--orphans", orphans),
                ("--late", late),
            )
            if given
        ]
        if (all_tenants or graph) and narrowing:
            raise CommandError(
                f"{' and '.join(narrowing)} select{'s' if len(narrowing) == 1 else ''} lines "
                f"of the list; leave out {'--all-tenants' if all_tenants else '--graph'}."
            )
        if all_tenants:
            if graph:
                raise CommandError("--graph shows one scope; leave out --all-tenants.")
            self._across_tenants(pending, check, as_json, check_cadence)
            return
        if orphans:
            self._orphans(as_json)
            return
        everything = readable_statuses()
        # A gate also recovers: a dead worker's run, a task never started.
        recovered = recover_gone() if check else []
        for run in recovered:
            self.stderr.write(
                f"Recovered run #{run.pk} of '{run.command_name}': {run.error_message}"
            )
        if recovered:
            everything = readable_statuses()
        # Whoever looks detects a command turning late: logged once per late spell.
        alert_late(everything)
        selected = [s for s in everything if selection.picks(s.command)]
        waiting = [s for s in selected if s.state == CommandState.PENDING]
        statuses = waiting if pending else selected
        if changed:
            statuses = listing.changed(selected)
        elif stale is not None:
            statuses = listing.stale(selected, stale)
        elif late:
            statuses = [s for s in selected if s.alarms]
        if graph:  # the whole graph: a pending command's requirements may be done
            self.stdout.write(listing.mermaid(everything))
        elif as_json:
            self.stdout.write(json.dumps([listing.as_json(s) for s in statuses], indent=2))
        elif self.verbosity:
            self._print(listing.by_app(statuses), _empty(pending, changed, stale, late))
            if changed and statuses:
                self.say("Rerun them with:")
                for status in statuses:
                    self.say(f"  python manage.py {status.command.name} --rerun")
        if check_cadence:
            self._fail_alarms(listing.alarm_lines(selected))
        if check and waiting:
            names = ", ".join(s.command.name for s in waiting)
            self._fail_pending(
                len(waiting),
                f"pending{selection.describe()}: {names}",
                f"run_pending_commands{selection.options()}",
            )

    def _fail_alarms(self, lines: list[str]) -> None:
        """The cadence gate: one line per alarm on stderr, then exit 1."""
        if not lines:
            return
        for line in lines:
            self.stderr.write(line)
        raise CommandError(
            f"{plural(len(lines), 'recurring command')} {'is' if len(lines) == 1 else 'are'} "
            f"late, failing or overrunning."
        )

    def _across_tenants(
        self, pending: bool, check: bool, as_json: bool, check_cadence: bool = False
    ) -> None:
        tenants = statuses_by_tenant(alert=True)
        if as_json:
            self.stdout.write(json.dumps(listing.matrix_json(tenants, pending), indent=2))
        elif not tenants:
            self.say("No tenants.")
        else:
            header, groups = listing.matrix(tenants, pending)
            if groups:
                self.say(self.style.MIGRATE_HEADING(header))
            self._print(groups, _empty(pending))
        waiting = listing.pending_in(tenants)
        if check and waiting:
            where = "; ".join(f"{schema}: {', '.join(names)}" for schema, names in waiting.items())
            self._fail_pending(
                len(set().union(*waiting.values())),
                f"pending in {len(waiting)} of {len(tenants)} tenants ({where})",
                "run_pending_commands --all-tenants",
            )
        if check_cadence:
            self._fail_alarms(
                [line for t in tenants for line in listing.alarm_lines(t.statuses, t.schema)]
            )

    def _orphans(self, as_json: bool) -> None:
        found = orphans(history_recorder())
        if as_json:
            self.stdout.write(json.dumps([listing.orphan_json(o) for o in found], indent=2))
            return
        if not found:
            self.say("No orphans: every command with recorded runs is installed.")
            return
        self.say(self.style.MIGRATE_HEADING(listing.orphans_header(len(found))))
        for line in listing.orphan_lines(found):
            self.say(line)
        self.say("Delete their runs with: python manage.py prune_command_history --orphans")

    def _print(self, groups: list[tuple[str, list[str]]], empty: str) -> None:
        if not groups:
            self.say(empty)
        for app_label, lines in groups:
            self.say(self.style.MIGRATE_LABEL(app_label))
            for line in lines:
                self.say(line)

    def _fail_pending(self, count: int, where: str, run_with: str) -> None:
        raise CommandError(
            f"{plural(count, 'run_once command')} {'is' if count == 1 else 'are'} {where}. "
            f"Run them with 'python manage.py {run_with}'."
        )
