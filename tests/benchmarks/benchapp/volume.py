"""The body shared by the plain and the managed output benchmark commands."""


def add_arguments(parser):
    parser.add_argument("--megabytes", type=int, default=100)


def write(command, megabytes):
    """Write ``megabytes`` MiB in 1 KiB lines, alternating ``self.stdout`` and ``print()``."""
    chunk = "y" * 1023 + "\n"
    for index in range(megabytes * 1024):
        if index % 2:
            print(chunk, end="")
        else:
            command.stdout.write(chunk, ending="")
