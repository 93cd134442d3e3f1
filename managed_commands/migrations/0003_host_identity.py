"""Record the host identity of a run: boot, PID namespace and machine.

A hostname is shared by containers with host networking, each with its own
PID namespace; the PID of a holder is checked only by a process of the same
identity. Rows written before this migration have none and are judged by
their heartbeat lease.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("managed_commands", "0002_index_tie_breaker")]

    operations = [
        migrations.AddField(
            model_name="commandexecution",
            name="host_id",
            field=models.CharField(
                blank=True, editable=False, max_length=128, verbose_name="host identity"
            ),
        ),
    ]
