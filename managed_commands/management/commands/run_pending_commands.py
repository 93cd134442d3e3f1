"""``manage.py run_pending_commands``: the deploy step, what ``migrate`` is for migrations."""

from __future__ import annotations

import traceback
from typing import Any

from django.core.management.base import CommandError, CommandParser

from managed_commands.definition import Definition
from managed_commands.executor import CommandExecutor
from managed_commands.formatting import plural
from managed_commands.listing import ReportingCommand, requirement_text
from managed_commands.loader import Selection, add_arguments, from_options
from managed_commands.models import CommandExecution
from managed_commands.status import CommandState
from managed_commands.tenants import TenantsDeploy, deploy_targets, each_tenant


class Command(ReportingCommand):
    help = (
        "Run every pending run_once command, each after the commands it requires; "
        "stop at the first failure."
    )
    #: With --all-tenants, the schema of the tenant being deployed.
    tenant = ""

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
        parser.add_argument(
            "--queue-name",
            help="With --enqueue: the task queue of the whole chain (default: 'default').",
        )
        parser.add_argument(
            "--backend",
            help="With --enqueue: the TASKS backend alias of the whole chain (default: 'default').",
        )
        parser.add_argument(
            "--all-tenants",
            action="store_true",
            help="With django-tenants: deploy every tenant in turn (public too when it holds "
            "a history of its own), then print one summary; stop at the first failing tenant.",
        )
        parser.add_argument(
            "--keep-going",
            action="store_true",
            help="With --all-tenants: carry on past a failing tenant, then exit 1 naming them.",
        )
        add_arguments(parser, "the pending commands")

    def handle(
        self,
        *,
        plan: bool,
        fake: list[str] | None,
        all_tenants: bool,
        keep_going: bool,
        enqueue: bool,
        queue_name: str | None,
        backend: str | None,
        **options: Any,
    ) -> None:
        selection = from_options(options)
        if enqueue:
            if plan or fake is not None or all_tenants:
                raise CommandError(
                    "--enqueue runs nothing here: leave out --plan, --fake and --all-tenants."
                )
            self._enqueue(selection, queue_name, backend)
            return
        if queue_name or backend:
            raise CommandError(
                "--queue-name and --backend say where --enqueue sends the tasks; add --enqueue."
            )
        if not all_tenants:
            if keep_going:
                raise CommandError(
                    "--keep-going carries on past a failing tenant; add --all-tenants."
                )
            self._deploy(CommandExecutor(), selection, plan, fake)
            return
        deploy = TenantsDeploy(keep_going)
        for tenant in each_tenant(deploy.start(deploy_targets())):
            with deploy.step(tenant.schema_name, self.stderr):
                self.tenant = tenant.schema_name
                deploy.done(self._deploy(CommandExecutor(), selection, plan, fake))
        if deploy.outcomes:
            self.say(self.style.MIGRATE_HEADING(deploy.heading()))
            for line in deploy.lines():
                self.say(line)
        else:
            self.say("No tenants.")
        deploy.raise_for_failures()

    def _deploy(
        self,
        executor: CommandExecutor,
        selection: Selection,
        plan: bool,
        fake: list[str] | None,
    ) -> str:
        """Plan, fake or run the pending commands of the selected scope; return the outcome."""
        # Say which phase and tags, and which tenant (or scope), each line is about.
        self.where = selection.describe() + self._place(executor)
        steps = executor.plan(fake or None, selection)
        planned = {command.name for command in steps}
        for name in fake or ():
            if name not in planned:
                done = executor.statuses[name].state == CommandState.DONE
                why = "it is already done" if done else f"it is not{selection.describe()}"
                tenant = f" in tenant '{self.tenant}'" if self.tenant else ""
                self.say(f"Skipped '{name}'{tenant}: {why}.")
        if not steps:
            if not self.tenant:  # across tenants, the summary says it
                self.say(f"No pending run_once commands{self.where}.")
            return "nothing pending"
        if plan:
            verb = "fake" if fake is not None else "run"
            self._print_plan(executor, steps, verb)
            return f"would {verb} {len(steps)}"
        if fake is not None:
            executor.fake(steps, self._progress)
            self.say(
                f"Faked {plural(len(steps), 'command')}{self.where}: recorded as done, not run."
            )
            return f"faked {len(steps)}"
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
        return f"ran {len(steps)}"

    def _place(self, executor: CommandExecutor) -> str:
        # Under all_tenants_command the scope names the tenant; across tenants
        # the tenant is named, the public one (scope "") included.
        if self.tenant:
            return f" in tenant '{self.tenant}'"
        return f" in scope '{executor.scope}'" if executor.scope else ""

    def _enqueue(self, selection: Selection, queue_name: str | None, backend: str | None) -> None:
        # Imported here: defining the task reads the TASKS setting, needed only now.
        from managed_commands.tasks import enqueue_pending

        rows, waiting = enqueue_pending(selection, queue_name=queue_name, backend=backend)
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
