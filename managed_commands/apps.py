from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ManagedCommandsConfig(AppConfig):
    name = "managed_commands"
    verbose_name = _("Managed commands")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from managed_commands import checks

        checks.register()
