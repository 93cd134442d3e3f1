from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("managed_commands", "0006_dry_runs_and_origin")]

    operations = []
