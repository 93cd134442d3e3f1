"""Django's own ``user_commands`` tests, with every command of that app a ``ManagedBaseCommand``.

``tests/test_django_user_commands.py`` extracts Django's ``tests/runtests.py``,
``tests/user_commands/`` and what they import from the sdist of the installed
Django, copies ``sitecustomize.py`` beside ``runtests.py`` and runs
``runtests.py --settings=tests.django_suite.settings user_commands``:

- ``sitecustomize.py`` installs ``hook`` in every Python process of the run
  (``runtests.py`` and the ``manage.py`` processes some tests start): each
  ``user_commands.management.commands.*`` module is executed with
  ``BaseCommand`` bound to ``ManagedBaseCommand``, so Django's own commands
  (``migrate``, ``check``) stay plain;
- ``settings`` adds ``managed_commands`` and this app to the apps ``runtests.py``
  installs, so the history table is migrated in the test database;
- ``apps.DjangoSuiteConfig.ready()`` gives the tests what a project with managed
  commands has (see ``apps``) and records every finished run and every test's
  outcome in the report file the test reads.
"""
