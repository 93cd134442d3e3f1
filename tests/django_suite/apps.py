"""The app that gives Django's ``user_commands`` tests what a project with managed commands has.

A managed command records its run in the table of the ``managed_commands`` app
and refuses to run without it (``TrackingUnavailable``, by design). Django's
``CommandTests`` are ``SimpleTestCase``s (no database) under
``override_settings(INSTALLED_APPS=["django.contrib.auth",
"django.contrib.contenttypes", "user_commands"])`` ("a minimal set of apps to
avoid system checks running on all apps"), and ``CommandRunTests`` writes
settings with ``INSTALLED_APPS = ["user_commands"]`` for the ``manage.py``
processes it starts: as written, 40 of the 52 tests (Django 5.2) would only show
that refusal. So, changing nothing any test asserts:

- an ``INSTALLED_APPS`` that installs ``user_commands`` also installs
  ``managed_commands``, as a project whose commands are managed does: in
  ``override_settings()`` and in the settings files ``AdminScriptTestCase``
  writes (whose ``DATABASES`` is the test database);
- a ``SimpleTestCase`` may use the ``default`` database: the test database,
  migrated with the ``managed_commands`` table.

Every finished managed run of ``runtests.py``'s process goes to the report file.
"""

from __future__ import annotations

import importlib

from django.apps import AppConfig, apps
from django.core.management import find_commands
from django.test import SimpleTestCase
from django.test.utils import override_settings

from tests.django_suite import hook

_prepared = False


class DjangoSuiteConfig(AppConfig):
    name = "tests.django_suite"
    label = "mc_django_suite"

    def ready(self):
        global _prepared
        # runtests.py sets the registry up twice: first with its own apps, then
        # with the test apps added; the tests are loaded after the second.
        if apps.is_installed("user_commands") and not _prepared:
            _prepared = True
            _make_every_command_managed()
            _install_managed_commands_with_user_commands()
            SimpleTestCase.databases = {"default"}

            from managed_commands.signals import command_finished

            command_finished.connect(_report_run, dispatch_uid="mc_django_suite")


def _make_every_command_managed():
    """Import each command of ``user_commands`` now: the hook makes it managed, or fails."""
    from managed_commands.base import ManagedBaseCommand

    path = apps.get_app_config("user_commands").path
    for name in find_commands(f"{path}/management"):
        module = importlib.import_module(f"{hook.PACKAGE}{name}")
        assert issubclass(module.Command, ManagedBaseCommand), module.__name__


def _with_managed_commands(installed):
    if installed is None or "user_commands" not in installed or "managed_commands" in installed:
        return installed
    return [*installed, "managed_commands"]


def _install_managed_commands_with_user_commands():
    enable = override_settings.enable

    def enable_with_managed_commands(self):
        if "INSTALLED_APPS" in self.options:
            installed = _with_managed_commands(self.options["INSTALLED_APPS"])
            self.options = {**self.options, "INSTALLED_APPS": installed}
        enable(self)

    override_settings.enable = enable_with_managed_commands

    # Django's user_commands tests import AdminScriptTestCase from here.
    from admin_scripts.tests import AdminScriptTestCase

    write_settings = AdminScriptTestCase.write_settings

    def write_settings_with_managed_commands(self, filename, apps=None, *args, **kwargs):
        return write_settings(self, filename, _with_managed_commands(apps), *args, **kwargs)

    AdminScriptTestCase.write_settings = write_settings_with_managed_commands


def _report_run(sender, command, execution, **kwargs):
    hook.report(event="run", command=execution.command_name, status=execution.status)
