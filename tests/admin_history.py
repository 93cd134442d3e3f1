"""A small run history for the admin tests: a success, a crash, hostile output."""

import datetime
from dataclasses import dataclass

import pytest
from django.utils import timezone

from managed_commands.models import CommandExecution
from managed_commands.testing.utils import run_command
from managed_commands.utils import record_command_execution

PAYLOAD = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"
# How Django's escaping renders PAYLOAD: proof it is shown as text.
ESCAPED_PAYLOAD = (
    "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;"
    "&lt;img src=x onerror=&quot;document.title=&#x27;pwned&#x27;&quot;&gt;"
)


@dataclass
class History:
    succeeded: CommandExecution
    crashed: CommandExecution
    hostile: CommandExecution
    hostile_name: CommandExecution


def make_history():
    """Runs of real commands plus two rows written through the manual API.

    ``once`` and ``needs_once`` never run, so the overview shows them pending.
    """
    succeeded = run_command("noop_once").execution
    with pytest.raises(ValueError, match="the data is bad"):
        run_command("fail", crash=True)
    crashed = CommandExecution.objects.get(command_name="fail")
    hostile = record_command_execution(
        "talk",
        success=False,
        parameters={"text": PAYLOAD},
        output=PAYLOAD,
        error_message=PAYLOAD,
        duration=185.2,
    )
    hostile_name = record_command_execution(PAYLOAD, success=True, duration=0.85)
    history = History(succeeded, crashed, hostile, hostile_name)
    # One minute apart, in this order, whatever the durations and clock resolution.
    now = timezone.now()
    for minutes_ago, run in enumerate(reversed(list(vars(history).values())), start=1):
        shift = now - datetime.timedelta(minutes=minutes_ago) - run.executed_at
        run.executed_at += shift
        run.finished_at += shift
        CommandExecution.objects.filter(pk=run.pk).update(
            executed_at=run.executed_at, finished_at=run.finished_at
        )
    return history
