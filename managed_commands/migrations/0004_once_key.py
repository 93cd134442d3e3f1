"""Add ``once_key``: the unique key a done run_once command holds.

A run_once run claims ``once_key`` along with ``lock_key``; a success keeps
it, any other end clears it. So a second claim is refused by the unique index
itself, with no read before or after the insert that a success committing in
between could slip past.

Existing history is backfilled: in each (command, scope), the newest
successful row gets the key. Until now a run_once command was done when it had
any successful run (the read this key replaces), so exactly the commands that
were done stay done after the upgrade.
"""

import hashlib

from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def once_key(name: str, scope: str) -> str:
    # The formula of managed_commands.runs.claim.lock_key(), copied so that this
    # migration never changes with the code; a test checks that both agree.
    return hashlib.sha256(f"{scope}\0{name}".encode()).hexdigest()


def backfill(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    executions = apps.get_model("managed_commands", "CommandExecution").objects.using(
        schema_editor.connection.alias
    )
    successes = executions.filter(success=True)
    groups = successes.order_by().values_list("command_name", "scope").distinct()
    for name, scope in list(groups.iterator()):
        newest = (
            successes.filter(command_name=name, scope=scope)
            .order_by("-executed_at", "-id")
            .values_list("pk", flat=True)
            .first()
        )
        if newest is not None:
            executions.filter(pk=newest).update(once_key=once_key(name, scope))


class Migration(migrations.Migration):
    dependencies = [("managed_commands", "0003_host_identity")]

    operations = [
        migrations.AddField(
            model_name="commandexecution",
            name="once_key",
            field=models.CharField(
                blank=True, editable=False, max_length=64, null=True, unique=True
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
    ]
