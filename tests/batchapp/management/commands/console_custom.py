from django import forms

from managed_commands.base import ManagedBaseCommand


class FixForm(forms.Form):
    count = forms.IntegerField(min_value=1, help_text="How many.")
    day = forms.DateField(required=False)
    loud = forms.BooleanField(required=False)
    token = forms.CharField(required=False)  # looks secret: a password input all the same


class Command(ManagedBaseCommand):
    help = "Gives the admin console its own form, and needs a permission of its own."
    admin_form = FixForm
    run_permission = "batchmodels.change_item"

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--day")
        parser.add_argument("--loud", action="store_true")
        parser.add_argument("--token")

    def handle(self, *args, count, day, loud, token, **options):
        self.stdout.write(f"count={count} day={day} loud={loud}")
