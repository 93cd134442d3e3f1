"""Which tasks API this project has: ``django.tasks`` or the ``django_tasks`` backport."""

from __future__ import annotations

import importlib
from typing import Any


def tasks_api() -> Any:
    """``django.tasks`` (Django 6.0+) or the ``django_tasks`` backport; None without either."""
    for name in ("django.tasks", "django_tasks"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None
