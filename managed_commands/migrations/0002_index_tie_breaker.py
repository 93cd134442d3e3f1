"""End both history indexes with ``id``, the tie-breaker of the model's ordering.

Without it a seek for a command's newest run ordered by ``-executed_at, -id``
reads and sorts every row of that command on SQLite (and picks a full scan of
the ``executed_at`` index on MariaDB). The new indexes are built before the
old ones are dropped, so the history is never without one.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("managed_commands", "0001_initial")]

    operations = [
        migrations.AddIndex(
            model_name="commandexecution",
            index=models.Index(
                fields=["command_name", "scope", "-executed_at", "-id"],
                name="mc_exec_name_scope_start_id",
            ),
        ),
        migrations.AddIndex(
            model_name="commandexecution",
            index=models.Index(
                fields=["command_name", "scope", "success", "-executed_at", "-id"],
                name="mc_exec_name_scope_success_id",
            ),
        ),
        migrations.RemoveIndex(model_name="commandexecution", name="mc_exec_name_scope_start"),
        migrations.RemoveIndex(model_name="commandexecution", name="mc_exec_name_scope_success"),
    ]
