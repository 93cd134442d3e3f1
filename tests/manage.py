#!/usr/bin/env python
"""manage.py of the test project, used by the tests that run real processes.

With ``MC_TEST_GATE`` set to a FIFO path, the process waits there after
Django has started, so that racing processes begin their command together.
With ``MC_TEST_CLAIMING`` set to a path, the process touches that file just
before it inserts a run's row.
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
    claiming = os.environ.get("MC_TEST_CLAIMING")
    if claiming:
        # Touch this file just before inserting a run's row: a test that makes
        # that insert wait on a lock it holds knows when to signal the process.
        from django.db.backends.signals import connection_created

        def announce_inserts(connection, **kwargs):
            def wrapper(execute, sql, params, many, context):
                if sql.startswith("INSERT") and "commandexecution" in sql:
                    Path(claiming).touch()
                return execute(sql, params, many, context)

            connection.execute_wrappers.append(wrapper)

        connection_created.connect(announce_inserts, weak=False)
    if os.environ.get("MC_TEST_BEAT_AFTER_END"):
        from tests import hooks

        hooks.beat_after_each_end()
    gate = os.environ.get("MC_TEST_GATE")
    if gate:
        Path(f"{gate}.ready.{os.getpid()}").touch()
        with open(gate, "rb", buffering=0) as fifo:
            fifo.read(1)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
