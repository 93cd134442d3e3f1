import importlib.util

from django.contrib import admin
from django.urls import path

from managed_commands.health import cadence_view

urlpatterns = [path("admin/", admin.site.urls), path("mc/cadence/", cadence_view)]

if importlib.util.find_spec("health_check"):  # the [health] extra
    from health_check.views import HealthCheckView

    urlpatterns.append(
        path("ht/", HealthCheckView.as_view(checks=["managed_commands.health.CommandsHealthCheck"]))
    )
