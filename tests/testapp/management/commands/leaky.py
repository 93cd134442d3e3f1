import logging
import sys

from managed_commands.base import ManagedBaseCommand

logger = logging.getLogger("testapp.leaky")
#: The shape of a live API key, made up here so that no option carries it.
API_KEY = "sk_live_" + "0123456789abcdefghijKLMN"


class Command(ManagedBaseCommand):
    help = "Shows the secret it was given everywhere a run's texts are stored, then fails."

    def add_arguments(self, parser):
        parser.add_argument("--api-token")

    def handle(self, *args, api_token, **options):
        self.stdout.write(f"stdout: token={api_token} key={API_KEY}")
        print(f"print: token={api_token}")
        self.stderr.write(f"stderr: token={api_token}")
        print(f"print: token={api_token}", file=sys.stderr)
        logger.warning("logged: token=%s", api_token)
        raise ValueError(f"the API refused token {api_token}")
