"""Audited dry runs (status ``dry_run``, what they would have written) and who
started each run, from which release.

Every new column is nullable: processes still on the previous release keep
inserting rows while a rolling deploy is under way.
"""

import django.core.serializers.json
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("managed_commands", "0005_batch_progress"),
    ]

    operations = [
        migrations.AddField(
            model_name="commandexecution",
            name="dry_run",
            field=models.BooleanField(
                blank=True,
                help_text="Run with --dry-run: its work was rolled back, whatever its status.",
                null=True,
                verbose_name="dry run",
            ),
        ),
        migrations.AddField(
            model_name="commandexecution",
            name="metadata",
            field=models.JSONField(
                blank=True,
                encoder=django.core.serializers.json.DjangoJSONEncoder,
                help_text="What MANAGED_COMMANDS['METADATA'] returned when the run started.",
                null=True,
                verbose_name="metadata",
            ),
        ),
        migrations.AddField(
            model_name="commandexecution",
            name="origin",
            field=models.JSONField(
                blank=True,
                help_text="What started the run (trigger), the OS user, the Django user and the release.",
                null=True,
                verbose_name="started by",
            ),
        ),
        migrations.AddField(
            model_name="commandexecution",
            name="writes",
            field=models.JSONField(
                blank=True,
                help_text="What a dry run rolled back: rows per table and kind, mails and tasks held.",
                null=True,
                verbose_name="would have written",
            ),
        ),
        migrations.AlterField(
            model_name="commandexecution",
            name="status",
            field=models.CharField(
                choices=[
                    ("running", "running"),
                    ("succeeded", "succeeded"),
                    ("failed", "failed"),
                    ("interrupted", "interrupted"),
                    ("abandoned", "abandoned"),
                    ("faked", "faked"),
                    ("dry_run", "dry run"),
                ],
                default="running",
                max_length=16,
                verbose_name="status",
            ),
        ),
    ]
