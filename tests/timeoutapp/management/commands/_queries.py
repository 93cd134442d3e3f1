"""The backend-specific SQL the timeout commands run."""

from django.db import connection


def sleep_sql(seconds: float) -> str:
    """A statement that keeps the database busy for ``seconds``."""
    if connection.vendor == "postgresql":
        return f"SELECT pg_sleep({seconds})"
    if connection.vendor == "sqlite":  # no sleep function: count, for about that long
        return (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            f"WHERE x < {int(seconds * 5_000_000)}) SELECT count(*) FROM c"
        )
    return f"SELECT SLEEP({seconds})"


def settings_sql() -> str:
    """The timeouts in effect on the connection, as one row of text."""
    if connection.vendor == "postgresql":
        return "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"
    return "SELECT @@SESSION.max_statement_time, @@SESSION.innodb_lock_wait_timeout"
