"""The three database backends the suite runs on, and whether each can be reached.

``MC_TEST_DB`` names the backend of a run. When it is set, that backend is
required: being unable to reach it fails the run. When it is not set, the
suite runs in process on SQLite and its real-process tests on every backend
that answers, skipping the others with the reason.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

ALL = ("sqlite", "postgresql", "mariadb")


def requested() -> str | None:
    return os.environ.get("MC_TEST_DB") or None


#: ``MC_TEST_SELECT``: which tests a run keeps. ``all`` (the default); ``django``:
#: the in-process suite and the real-process tests marked ``django`` (their
#: outcome depends on the Django version); ``processes``: the real-process tests
#: only; ``in-process``: the in-process suite only.
SELECTIONS = ("all", "django", "processes", "in-process")


def selection() -> str:
    return os.environ.get("MC_TEST_SELECT") or "all"


def selected(is_process_test: bool, depends_on_django: bool) -> bool:
    """Whether the run's ``MC_TEST_SELECT`` keeps a test of this kind."""
    chosen = selection()
    if chosen == "django":
        return not is_process_test or depends_on_django
    if chosen == "processes":
        return is_process_test
    if chosen == "in-process":
        return not is_process_test
    return True


def process_backends() -> tuple[str, ...]:
    """Backends the real-process tests run on."""
    chosen = requested()
    return (chosen,) if chosen else ALL


def _pg_params(dbname: str = "postgres") -> dict[str, Any]:
    return {
        "host": os.environ.get("MC_TEST_PG_HOST", "127.0.0.1"),
        "port": int(os.environ.get("MC_TEST_PG_PORT", "5432")),
        "user": os.environ.get("MC_TEST_PG_USER", "postgres"),
        "dbname": dbname,
        "connect_timeout": 3,
    }


def _mysql_params(database: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "host": os.environ.get("MC_TEST_MYSQL_HOST", "127.0.0.1"),
        "port": int(os.environ.get("MC_TEST_MYSQL_PORT", "3306")),
        "user": os.environ.get("MC_TEST_MYSQL_USER", "root"),
        "password": os.environ.get("MC_TEST_MYSQL_PASSWORD", ""),
        "connect_timeout": 3,
        "charset": "utf8mb4",
    }
    if database:
        params["database"] = database
    return params


@contextmanager
def connect(backend: str, name: str | None = None) -> Iterator[Any]:
    """A DB-API connection in autocommit mode to the server (or the database ``name``)."""
    if backend == "sqlite":
        conn: Any = sqlite3.connect(name or ":memory:", timeout=30, isolation_level=None)
    elif backend == "postgresql":
        import psycopg

        conn = psycopg.connect(**_pg_params(name or "postgres"), autocommit=True)
    else:
        import MySQLdb

        conn = MySQLdb.connect(**_mysql_params(name))
        conn.autocommit(True)
    try:
        yield conn
    finally:
        conn.close()


@cache
def unavailable(backend: str) -> str | None:
    """Why ``backend`` cannot be used here, or None when it can."""
    try:
        with connect(backend) as conn:
            conn.cursor().execute("SELECT 1")
    except ImportError as exc:
        return (
            f"{backend}: its driver is not installed ({exc}); pip install -e '.[{_extra(backend)}]'"
        )
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{backend}: server not reachable ({type(exc).__name__}: {exc})"
    return None


def _extra(backend: str) -> str:
    return "postgresql" if backend == "postgresql" else "mysql"
