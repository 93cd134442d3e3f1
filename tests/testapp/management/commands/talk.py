import logging
import sys

from managed_commands.base import ManagedBaseCommand

logger = logging.getLogger("testapp.talk")


class Command(ManagedBaseCommand):
    help = "Writes through every channel a command has."

    def handle(self, *args, **options):
        self.stdout.write("stdout: café ✓ 数据")
        print("print: to sys.stdout")
        self.stderr.write("stderr: careful")
        print("print: to sys.stderr", file=sys.stderr)
        logger.warning("a log record")
        return "returned text"
