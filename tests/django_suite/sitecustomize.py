"""Copied beside Django's ``runtests.py`` (on ``PYTHONPATH`` there) by
``tests/test_django_user_commands.py``: every Python process of that run, the
``manage.py`` processes that Django's tests start included, makes the commands of
the ``user_commands`` app ``ManagedBaseCommand`` subclasses (``tests.django_suite.hook``).

``MC_DJANGO_SUITE_ROOT`` is the checkout of ``managed_commands`` to use: Django's
tests give their ``manage.py`` processes a ``PYTHONPATH`` of their own.
"""

import os
import sys


def _install_hook() -> None:
    root = os.environ.get("MC_DJANGO_SUITE_ROOT")
    if not root:
        return
    if root not in sys.path:
        sys.path.insert(0, root)
    from tests.django_suite import hook

    hook.install()


_install_hook()
