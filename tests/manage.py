#!/usr/bin/env python
"""manage.py of the test project, used by the tests that run real processes.

With ``MC_TEST_GATE`` set to a FIFO path, the process waits there after
Django has started, so that racing processes begin their command together.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

if __name__ == "__main__":
    import faulthandler
    import signal

    import django

    # A test whose process hangs sends SIGUSR1 to print every thread's stack.
    faulthandler.register(signal.SIGUSR1, all_threads=True)

    # A shell's background job starts with SIGINT ignored, and children inherit
    # that; the signal tests need the disposition an interactive user has.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    django.setup()
    gate = os.environ.get("MC_TEST_GATE")
    if gate:
        Path(f"{gate}.ready.{os.getpid()}").touch()
        with open(gate, "rb", buffering=0) as fifo:
            fifo.read(1)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
