"""Timeouts in process: what a run sets on its connection, and that none of it outlives the run."""

from __future__ import annotations

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, connections, transaction

from managed_commands.base import ManagedBaseCommand
from managed_commands.exceptions import StatementTimedOut
from managed_commands.models import CommandExecution
from tests.timeoutapp.management.commands import over_time, show_timeouts, slow_query
from tests.timeoutapp.management.commands._queries import settings_sql

with_timeouts = pytest.mark.skipif(
    connection.vendor not in ("postgresql", "mysql"), reason="database timeouts"
)
#: What show_timeouts (2 s, 0.5 s) finds set, as each database reports it.
SHOWN = {"postgresql": "('2s', '500ms')", "mysql": "(2.0, 1)"}


def settings_now():
    with connection.cursor() as cursor:
        cursor.execute(settings_sql())
        return cursor.fetchone()


def shown_by_a_run():
    out = StringIO()
    call_command(show_timeouts.Command(), stdout=out)
    return out.getvalue()


@with_timeouts
@pytest.mark.django_db(transaction=True)
def test_timeouts_hold_in_handle_only():
    before = settings_now()
    shown = SHOWN[connection.vendor]
    assert shown_by_a_run() == f"autocommit: {shown}\natomic: {shown}\n"
    assert settings_now() == before
    with transaction.atomic():
        assert settings_now() == before


@with_timeouts
@pytest.mark.django_db
def test_a_run_in_the_callers_transaction_gives_it_back_its_own_values():
    before = settings_now()
    shown = SHOWN[connection.vendor]
    assert shown_by_a_run() == f"autocommit: {shown}\natomic: {shown}\n"
    assert settings_now() == before


@with_timeouts
@pytest.mark.django_db(transaction=True)
def test_a_statement_stopped_by_its_timeout_fails_the_run_naming_it():
    with pytest.raises(StatementTimedOut) as raised:
        call_command(slow_query.Command(), seconds=3, stdout=StringIO())
    assert str(raised.value).startswith(
        "'slow_query' failed: its statement_timeout of 1 s stopped a query ("
    )
    assert isinstance(raised.value.__cause__, OperationalError)
    [row] = CommandExecution.objects.all()
    assert row.status == "failed" and row.error_message == f"StatementTimedOut: {raised.value}"
    assert 0.9 < row.duration < 2.5


class Vacuum(ManagedBaseCommand):
    statement_timeout = 5

    def handle(self, *args, **options):
        with connection.cursor() as cursor:
            cursor.execute("VACUUM managed_commands_commandexecution")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's VACUUM")
@pytest.mark.django_db(transaction=True)
def test_a_statement_refusing_transactions_runs_without_the_timeouts():
    call_command(Vacuum(), stdout=StringIO())
    assert CommandExecution.objects.get().status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_a_run_outside_the_main_thread_says_its_time_limit_could_not_stop_it():
    err = StringIO()

    def run():
        try:
            call_command(over_time.Command(), seconds=1.3, stdout=StringIO(), stderr=err)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    note = (
        "managed_commands: time_limit of 1 s reached, but the run could not be stopped: "
        "it does not run in the main thread, or SIGTERM is ignored there.\n"
    )
    assert err.getvalue() == note
    [row] = CommandExecution.objects.all()
    assert row.status == "succeeded" and row.stderr == note
