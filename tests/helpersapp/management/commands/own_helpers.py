from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    """Helpers named as a user might name them: none may replace the tracking."""

    help = "Calls its own _run, _claim, _finish, _outcome, _send and _check_kwargs."
    run_once = True

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=2)

    def handle(self, *args, count, **options):
        self._check_kwargs()
        self._claim()
        for number in range(count):
            self._run(number)
        self._send(self._outcome())
        self._finish()

    def _check_kwargs(self):
        self.stdout.write("own _check_kwargs")

    def _claim(self):
        self.stdout.write("own _claim")

    def _run(self, number):
        self.stdout.write(f"own _run {number}")

    def _outcome(self):
        return "own _outcome"

    def _send(self, text):
        self.stdout.write(f"own _send: {text}")

    def _finish(self):
        self.stdout.write("own _finish")
