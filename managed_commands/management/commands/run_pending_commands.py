"""``manage.py run_pending_commands``: the deploy step, what ``migrate`` is for migrations."""

from __future__ import annotations

import traceback
from typing import Any

from django.core.management.base import CommandError, CommandParser

from managed_commands.definition import Definition
from managed_commands.executor import CommandExecutor
from managed_commands.formatting import plural
from managed_commands.listing import requirement_text
from managed_commands.management.output import ReportingCommand
from managed_commands.models import CommandExecution
from managed_commands.selection import Selection, add_arguments, from_options
from managed_commands.status import CommandState


class Command(ReportingCommand):
    help = (
        "Run every pending run_once command, each after the commands it requires; "
        "stop at the first failure."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--plan", action="store_true", help="Print the order; run nothing.")
        parser.add_argument(
            "--fake",
            nargs="*",
            metavar="NAME",
            help="Record the named commands (all pending ones when no name is given) as done "
            "without running them, marked as faked.",
        )
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="Enqueue them for task workers (django.tasks) instead of running them here: "
            "those whose requirements are met now, each of the others once what it requires "
            "has succeeded on a worker.",
        )
        add_arguments(parser, "the pending commands")

    def handle(self, *, plan: bool, fake: list[str] | None, enqueue: bool, **options: Any) -> None:
        selection = from_options(options)
        if enqueue:
            if plan or fake is not None:
                raise CommandError("--enqueue runs nothing here: leave out --plan and --fake.")
            self._enqueue(selection)
            return
        executor = CommandExecutor()
        # Say which phase and tags, and under all_tenants_command which tenant,
        # each summary is about.
        scope = f" in scope '{executor.scope}'" if executor.scope else ""
        self.where = selection.describe() + scope
        steps = executor.plan(fake or None, selection)
        planned = {command.name for command in steps}
        for name in fake or ():
            if name not in planned:
                done = executor.statuses[name].state == CommandState.DONE
                why = "it is already done" if done else f"it is not{selection.describe()}"
                self.say(f"Skipped '{name}': {why}.")
        if not steps:
            self.say(f"No pending run_once commands{self.where}.")
        elif plan:
            self._print_plan(executor, steps, "fake" if fake is not None else "run")
        elif fake is not None:
            executor.fake(steps, self._progress)
            self.say(
                f"Faked {plural(len(steps), 'command')}{self.where}: recorded as done, not run."
            )
        else:
            self.say(
                self.style.MIGRATE_HEADING(
                    f"Running {plural(len(steps), 'pending command')}{self.where}: "
                    + ", ".join(command.name for command in steps)
                )
            )
            executor.run(
                steps,
                self._progress,
                verbosity=self.verbosity,
                stdout=self.stdout,
                stderr=self.stderr,
            )

    def _enqueue(self, selection: Selection) -> None:
        # Imported here: defining the task reads the TASKS setting, needed only now.
        from managed_commands.tasks import enqueue_pending

        rows, waiting = enqueue_pending(selection)
        where = selection.describe()
        if not rows and not waiting:
            self.say(f"No pending run_once commands{where}.")
            return
        listed = ", ".join(f"{row.command_name} (run #{row.pk})" for row in rows)
        self.say(
            f"Enqueued {plural(len(rows), 'pending command')}{where} for task workers"
            + (f": {listed}" if rows else ".")
        )
        if waiting:
            self.say(
                f"{plural(len(waiting), 'command')} will be enqueued as what "
                f"{'it requires succeeds' if len(waiting) == 1 else 'they require succeed'}"
                f": {', '.join(waiting)}"
            )

    def _print_plan(self, executor: CommandExecutor, steps: list[Definition], verb: str) -> None:
        self.stdout.write(
            self.style.MIGRATE_HEADING(
                f"Would {verb} {plural(len(steps), 'pending command')}{self.where}, in this order:"
            )
        )
        for number, command in enumerate(steps, 1):
            # The statuses know which required migrations are not applied yet.
            requires = requirement_text(executor.statuses[command.name])
            after = f"  (requires {requires})" if command.requires else ""
            self.stdout.write(f"  {number}. {command.name}{after}")

    def _progress(
        self,
        event: str,
        command: Definition,
        execution: CommandExecution | None = None,
        error: BaseException | None = None,
    ) -> None:
        name = command.name
        if event == "start":
            self.say(self.style.MIGRATE_LABEL(f"  Running {name}..."))
        elif event == "success" and execution is not None:
            self.say(self.style.SUCCESS(f"  {name}: OK ({execution.duration or 0:.2f} s)"))
        elif event == "skipped":
            self.say(f"  {name}: already done by another process")
        elif event == "faked":
            self.say(f"  Faked {name}")
        elif event == "failure" and error is not None:
            self.stderr.write(self.style.ERROR(f"  {name}: FAILED"))
            if isinstance(error, CommandError):
                self.stderr.write(f"{type(error).__name__}: {error}")
            else:
                self.stderr.write("".join(traceback.format_exception(error)), ending="")
