from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Writes awkward output: --kind nul|surrogate|long-line|volume."

    def add_arguments(self, parser):
        parser.add_argument("--kind", required=True)
        parser.add_argument("--megabytes", type=int, default=10)

    def handle(self, *args, kind, megabytes, **options):
        if kind == "nul":
            self.stdout.write("before\x00after")
        elif kind == "surrogate":
            self.stdout.write(b"bad \xff\xfe bytes".decode("utf-8", "surrogateescape"))
        elif kind == "long-line":
            self.stdout.write("x" * (megabytes * 1_000_000))
        elif kind == "volume":
            chunk = "y" * 1023 + "\n"
            for index in range(megabytes * 1024):
                if index % 2:
                    print(chunk, end="")
                else:
                    self.stdout.write(chunk, ending="")
