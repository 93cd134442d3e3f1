import os

from managed_commands.base import ManagedBaseCommand

from ._effects import effects_so_far, hold, note


class Command(ManagedBaseCommand):
    help = "A run_once command that notes each time its body runs."
    run_once = True

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=0)
        parser.add_argument("--fail", action="store_true")
        parser.add_argument(
            "--fail-first", action="store_true", help="Fail if no earlier body ran."
        )

    def handle(self, *args, seconds, fail, fail_first, **options):
        first = not effects_so_far()
        note("once")
        hold(seconds)
        if fail or (fail_first and first) or os.environ.get("MC_TEST_ONCE_FAILS"):
            raise RuntimeError("once failed on purpose")
        self.stdout.write("once: done")
