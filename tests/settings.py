"""Settings of the test project. The database comes from the environment:

- ``MC_TEST_DB``: ``sqlite`` (default, a file), ``postgresql`` or ``mariadb``;
- ``MC_TEST_DB_NAME``: the database to use as is (subprocess tests set it to a
  database they created); without it, pytest-django creates a test database.

``MC_TEST_EXTRA_APPS`` (comma-separated) installs more apps, for example
``tests.brokenapp``, whose commands have the mistakes the system checks report.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

BACKEND = os.environ.get("MC_TEST_DB", "sqlite")
NAME = os.environ.get("MC_TEST_DB_NAME")

SECRET_KEY = "managed-commands-tests"
DEBUG = False
# The hosts of the server process the console's browser test starts (runserver).
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Seconds a statement waits for a row or database lock (real-process tests lower it).
LOCK_TIMEOUT = float(os.environ.get("MC_TEST_LOCK_TIMEOUT", "30"))
_SQLITE_DIR = Path(os.environ.get("MC_TEST_SQLITE_DIR", tempfile.gettempdir()))
_ENGINES = {
    "sqlite": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": NAME or str(_SQLITE_DIR / "managed_commands_tests.sqlite3"),
        "OPTIONS": {"timeout": LOCK_TIMEOUT},
        "TEST": {"NAME": str(_SQLITE_DIR / f"managed_commands_test_{os.getpid()}.sqlite3")},
    },
    "postgresql": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": NAME or "managed_commands",
        "USER": os.environ.get("MC_TEST_PG_USER", "postgres"),
        "HOST": os.environ.get("MC_TEST_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("MC_TEST_PG_PORT", "5432"),
        "OPTIONS": {"options": f"-c lock_timeout={int(LOCK_TIMEOUT * 1000)}"},
        "TEST": {"NAME": f"test_managed_commands_{os.getpid()}"},
    },
    "mariadb": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": NAME or "managed_commands",
        "USER": os.environ.get("MC_TEST_MYSQL_USER", "root"),
        "PASSWORD": os.environ.get("MC_TEST_MYSQL_PASSWORD", ""),
        "HOST": os.environ.get("MC_TEST_MYSQL_HOST", "127.0.0.1"),
        "PORT": os.environ.get("MC_TEST_MYSQL_PORT", "3306"),
        "OPTIONS": {
            "charset": "utf8mb4",
            "init_command": f"SET SESSION innodb_lock_wait_timeout={max(int(LOCK_TIMEOUT), 1)}",
        },
        "TEST": {
            "NAME": f"test_managed_commands_{os.getpid()}",
            "CHARSET": "utf8mb4",
            "COLLATION": "utf8mb4_unicode_ci",
        },
    },
}
if BACKEND not in _ENGINES:
    raise RuntimeError(f"MC_TEST_DB must be one of {', '.join(_ENGINES)}, not {BACKEND!r}.")
DATABASES = {"default": _ENGINES[BACKEND]}

INSTALLED_APPS = [
    # Before django.contrib.admin: adds the overview link to the admin index.
    "managed_commands",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "tests.testapp",
    # The rows of the batch-loop tests (its commands are in tests.batchapp).
    "tests.batchmodels",
]
INSTALLED_APPS += [app for app in os.environ.get("MC_TEST_EXTRA_APPS", "").split(",") if app]

# Task workers: django.tasks (Django 6.0+) or the django-tasks backport. The
# tests run tasks in process (ImmediateBackend) unless MC_TEST_TASKS names the
# workers' engine: ``db`` (django-tasks-db's db_worker), ``rq`` (django-tasks-rq
# on Redis, MC_TEST_REDIS_URL) or ``celery`` (django-tasks-celery on RabbitMQ,
# MC_TEST_AMQP_URL, the app in tests/celery_app.py).
_TASKS_API = next(
    (name for name in ("django.tasks", "django_tasks") if importlib.util.find_spec(name)), None
)
_ENGINE = os.environ.get("MC_TEST_TASKS")
if _TASKS_API:
    _TASKS_OPTIONS: dict[str, str] = {}
    if _ENGINE == "db":
        INSTALLED_APPS += ["django_tasks_db"]
        _TASKS_BACKEND = "django_tasks_db.DatabaseBackend"
    elif _ENGINE == "rq":
        INSTALLED_APPS += ["django_rq"]
        _TASKS_BACKEND = "django_tasks_rq.RQBackend"
        # A job runs at most DEFAULT_TIMEOUT seconds (RQ's own default: 180).
        RQ_QUEUES = {
            "default": {
                "URL": os.environ.get("MC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
                "DEFAULT_TIMEOUT": int(os.environ.get("MC_TEST_JOB_TIMEOUT", "600")),
            }
        }
    elif _ENGINE == "celery":
        _TASKS_BACKEND = "django_tasks_celery.CeleryBackend"
        _TASKS_OPTIONS = {"CELERY_APP": "tests.celery_app.app"}
        CELERY_BROKER_URL = os.environ.get(
            "MC_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"
        )
        # Results other processes can read: get_result() tells a failed task.
        CELERY_RESULT_BACKEND = os.environ.get("MC_TEST_CELERY_RESULTS", "")
        CELERY_RESULT_EXTENDED = True
        # A queue of the test run's own on the shared broker.
        CELERY_TASK_DEFAULT_QUEUE = os.environ.get("MC_TEST_CELERY_QUEUE", "celery")
        CELERY_WORKER_PREFETCH_MULTIPLIER = 1
    else:
        _TASKS_BACKEND = f"{_TASKS_API}.backends.immediate.ImmediateBackend"
    TASKS = {"default": {"BACKEND": _TASKS_BACKEND, "QUEUES": [], "OPTIONS": _TASKS_OPTIONS}}
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"
MANAGED_COMMANDS = {
    "WAIT_TIMEOUT": float(os.environ.get("MC_TEST_WAIT_TIMEOUT", "60")),
    "LEASE_SECONDS": float(os.environ.get("MC_TEST_LEASE", "60")),
    "RECONNECT_TIMEOUT": float(os.environ.get("MC_TEST_RECONNECT", "30")),
    # Redaction tests: a logging level to store log records at, and the
    # REDACT patterns, one per line.
    "CAPTURE_LOGS": os.environ.get("MC_TEST_CAPTURE_LOGS", False),
    "REDACT": os.environ.get("MC_TEST_REDACT", "").splitlines(),
}

# A project that routes the alerts (failed runs, late spells) somewhere: here to
# stderr, for the tests that read them from a real process's output.
if os.environ.get("MC_TEST_ALERTS_TO_STDERR"):
    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"stderr": {"class": "logging.StreamHandler"}},
        "loggers": {"managed_commands.alerts": {"handlers": ["stderr"], "level": "WARNING"}},
    }
