import argparse
from decimal import Decimal
from pathlib import Path

from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Takes an argument of each kind the admin console's form knows."
    sensitive_options = ["dsn"]

    def add_arguments(self, parser):
        parser.add_argument("target", help="What to fix.")
        parser.add_argument("extra", nargs="*", help="More targets.")
        parser.add_argument("--owner", required=True)
        parser.add_argument("--ratio", type=float, default=0.5)
        parser.add_argument("--price", type=Decimal)
        parser.add_argument("--path", type=Path)
        parser.add_argument("--shout", type=str.upper)
        parser.add_argument("--pair", nargs=2)
        parser.add_argument("--tag", action="append")
        parser.add_argument("--no-mail", dest="mail", action="store_false")
        parser.add_argument("--level", type=int, choices=[1, 2, 3], default=2)
        parser.add_argument("--dsn")
        parser.add_argument("--hidden", help=argparse.SUPPRESS)
        speed = parser.add_mutually_exclusive_group()
        speed.add_argument("--fast", action="store_true")
        speed.add_argument("--slow", action="store_true")

    def handle(self, *args, **options):
        shown = {k: options[k] for k in ("target", "extra", "owner", "ratio", "price", "tag")}
        self.stdout.write(repr(shown))
