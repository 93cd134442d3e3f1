from django.db import migrations

from managed_commands.executor import RequireCommand


class Migration(migrations.Migration):
    dependencies = [
        ("phasesapp", "0001_initial"),
        ("managed_commands", "0001_initial"),
    ]

    operations = [RequireCommand("backfill_slugs")]
