"""The backend-specific SQL the timeout commands run."""

from django.db import connection


def sleep_sql(seconds: float) -> str:
    """A statement that keeps the database busy for ``seconds``."""
    if connection.vendor == "postgresql":
        return f"SELECT pg_sleep({seconds})"
    return f"SELECT SLEEP({seconds})"


def settings_sql() -> str:
    """The timeouts in effect on the connection, as one row of text."""
    if connection.vendor == "postgresql":
        return "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"
    return "SELECT @@SESSION.max_statement_time, @@SESSION.innodb_lock_wait_timeout"
