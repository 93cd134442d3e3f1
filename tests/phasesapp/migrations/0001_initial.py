from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("managed_commands", "0001_initial")]

    operations = []
