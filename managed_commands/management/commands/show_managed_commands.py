"""``manage.py show_managed_commands``: what ``showmigrations`` is for migrations."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from managed_commands import listing
from managed_commands.formatting import plural
from managed_commands.management.output import ReportingCommand
from managed_commands.selection import add_arguments, from_options
from managed_commands.status import CommandState, readable_statuses
from managed_commands.tenants import statuses_by_tenant


class Command(ReportingCommand):
    help = (
        "List the managed commands by app: [X] done, [ ] pending, [F] failed last time, "
        "[R] running now, [-] repeatable; with their requires, last run and changed source."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--pending", action="store_true", help="Only the pending run_once commands."
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Exit with status 1 when any run_once command is pending (a deploy or CI gate).",
        )
        parser.add_argument(
            "--all-tenants",
            action="store_true",
            help="With django-tenants: a matrix of the commands by tenant (public left out), "
            "each cell done, pending, failed, running, or - (repeatable).",
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
        check: bool,
        all_tenants: bool,
        as_json: bool,
        graph: bool,
        **options: Any,
    ) -> None:
        selection = from_options(options)
        if not selection.everything and (all_tenants or graph):
            raise CommandError(
                "--phase and --tag select lines of the list; leave out "
                f"{'--all-tenants' if all_tenants else '--graph'}."
            )
        if all_tenants:
            if graph:
                raise CommandError("--graph shows one scope; leave out --all-tenants.")
            self._across_tenants(pending, check, as_json)
            return
        everything = readable_statuses()
        selected = [s for s in everything if selection.picks(s.command)]
        waiting = [s for s in selected if s.state == CommandState.PENDING]
        statuses = waiting if pending else selected
        if graph:  # the whole graph: a pending command's requirements may be done
            self.stdout.write(listing.mermaid(everything))
        elif as_json:
            self.stdout.write(json.dumps([listing.as_json(s) for s in statuses], indent=2))
        elif self.verbosity:
            self._print(listing.by_app(statuses), pending)
        if check and waiting:
            names = ", ".join(s.command.name for s in waiting)
            self._fail_pending(
                len(waiting),
                f"pending{selection.describe()}: {names}",
                f"run_pending_commands{selection.options()}",
            )

    def _across_tenants(self, pending: bool, check: bool, as_json: bool) -> None:
        tenants = statuses_by_tenant()
        if as_json:
            self.stdout.write(json.dumps(listing.matrix_json(tenants, pending), indent=2))
        elif not tenants:
            self.say("No tenants.")
        else:
            header, groups = listing.matrix(tenants, pending)
            if groups:
                self.say(self.style.MIGRATE_HEADING(header))
            self._print(groups, pending)
        waiting = listing.pending_in(tenants)
        if check and waiting:
            where = "; ".join(f"{schema}: {', '.join(names)}" for schema, names in waiting.items())
            self._fail_pending(
                len(set().union(*waiting.values())),
                f"pending in {len(waiting)} of {len(tenants)} tenants ({where})",
                "run_pending_commands --all-tenants",
            )

    def _print(self, groups: list[tuple[str, list[str]]], pending: bool) -> None:
        if not groups:
            self.say("No pending run_once commands." if pending else "No managed commands.")
        for app_label, lines in groups:
            self.say(self.style.MIGRATE_LABEL(app_label))
            for line in lines:
                self.say(line)

    def _fail_pending(self, count: int, where: str, run_with: str) -> None:
        raise CommandError(
            f"{plural(count, 'run_once command')} {'is' if count == 1 else 'are'} {where}. "
            f"Run them with 'python manage.py {run_with}'."
        )
