from __future__ import annotations

from django.apps import AppConfig, apps
from django.core.signals import setting_changed
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class ManagedCommandsConfig(AppConfig):
    name = "managed_commands"
    verbose_name = _("Managed commands")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, as Django asks: they load the models.
        from managed_commands import checks, console, listing, loader
        from managed_commands.signals import command_finished, on_finished

        checks.register()
        # sender=self: post_migrate is sent once per app, the notice is wanted once.
        post_migrate.connect(listing.pending_after_migrate, sender=self)
        if apps.is_installed("django.contrib.auth"):
            post_migrate.connect(console.create_run_permissions, sender=self)
        setting_changed.connect(loader.forget_discovery)
        # Failed and interrupted runs are logged once, in their own process, when
        # their end is recorded (an abandoned one by the takeover that closes it).
        command_finished.connect(on_finished, dispatch_uid="managed_commands.alerts")
