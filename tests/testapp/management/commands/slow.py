from managed_commands.base import ManagedBaseCommand

from ._effects import hold, note


class Command(ManagedBaseCommand):
    help = "A repeatable command that keeps running for --seconds."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=30)

    def handle(self, *args, seconds, **options):
        note("slow-start")
        self.stdout.write("slow: started")
        self.stdout.flush()
        hold(seconds)
        self.stdout.write("slow: done")
        note("slow-end")
