"""Run the test project's ``manage.py`` in real OS processes, on a database of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests import backends

MANAGE = Path(__file__).resolve().parent / "manage.py"
#: The environment of a process that runs the batch app's commands (its models hold data).
BATCHES = {"MC_TEST_EXTRA_APPS": "tests.batchapp"}
TABLE = "managed_commands_commandexecution"
COLUMNS = (
    "id",
    "command_name",
    "scope",
    "status",
    "success",
    "run_once",
    "forced",
    "parameters",
    "output",
    "stderr",
    "error_message",
    "traceback",
    "pid",
    "hostname",
    "lock_key",
    "duration",
    "finished_at",
)


# Where the history lives: with the rest ("single"), or on a second database
# named by MANAGED_COMMANDS["DATABASE"] or chosen by a database router.
LAYOUTS = ("single", "history-by-setting", "history-by-router")


class ProcessProject:
    """A freshly migrated database plus helpers to run commands against it.

    Args:
        backend: ``sqlite``, ``postgresql`` or ``mariadb``.
        workdir: A fresh directory for the files of this project.
        layout: One of ``LAYOUTS``; with a second database, ``sql()`` and
            ``rows()`` read the history there.
        settings: The settings module of the processes (``layout`` picks
            ``tests.settings_history`` unless it is "single").
    """

    def __init__(
        self, backend: str, workdir: Path, layout: str = "single", settings: str = "tests.settings"
    ) -> None:
        self.backend = backend
        self.workdir = workdir
        self.layout = layout
        self.effects = workdir / "effects.txt"
        self.started = workdir / "started.txt"
        self.name = self._database_name("db")
        self.history_name = self.name if layout == "single" else self._database_name("history")
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings if layout == "single" else "tests.settings_history",
            "MC_TEST_DB": backend,
            "MC_TEST_DB_NAME": self.name,
            "MC_TEST_HISTORY": layout.removeprefix("history-by-"),
            "MC_TEST_HISTORY_DB_NAME": self.history_name,
            "MC_TEST_EFFECTS": str(self.effects),
            "MC_TEST_STARTED": str(self.started),
            "PYTHONUNBUFFERED": "1",
        }

    def _database_name(self, role: str) -> str:
        if self.backend == "sqlite":
            return str(self.workdir / f"{role}.sqlite3")
        return f"mc_proc_{uuid.uuid4().hex[:12]}"

    @property
    def database_names(self) -> list[str]:
        return list(dict.fromkeys([self.name, self.history_name]))

    # -- the database ---------------------------------------------------------
    def create(self, migrate: bool = True) -> ProcessProject:
        for name in self.database_names:
            if self.backend == "postgresql":
                with backends.connect("postgresql") as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
            elif self.backend == "mariadb":
                with backends.connect("mariadb") as conn:
                    conn.cursor().execute(
                        f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
        if migrate:
            self.migrate()
        return self

    def migrate(self) -> None:
        result = self.run("migrate", "-v0")
        assert result.returncode == 0, result.stderr
        if self.layout == "single":
            return
        result = self.run("migrate", "--database", "history", "-v0")
        assert result.returncode == 0, result.stderr
        if self.layout == "history-by-setting":
            # Without a router, migrate made the table on default too: drop it,
            # so that any read or write of history there fails loudly.
            self.sql(f"DROP TABLE {TABLE}", database=self.name)

    def drop(self) -> None:
        for name in self.database_names:
            if self.backend == "postgresql":
                with backends.connect("postgresql") as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            elif self.backend == "mariadb":
                with backends.connect("mariadb") as conn:
                    conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")

    def empty_batch_data(self) -> None:
        """Empty the batch app's tables, which outlive each test's history (labels
        first: they point at items)."""
        for table in ("batchmodels_label", "batchmodels_item"):
            self.sql(f"DELETE FROM {table}", database=self.name)

    def sql(
        self, query: str, params: tuple[Any, ...] = (), database: str | None = None
    ) -> list[tuple[Any, ...]]:
        """Run ``query`` on ``database`` (by default the one holding the history)."""
        if self.backend != "sqlite":
            query = query.replace("?", "%s")
        with backends.connect(self.backend, database or self.history_name) as conn:
            cursor = conn.cursor()
            cursor.execute(query, params)
            return list(cursor.fetchall()) if cursor.description else []

    @contextmanager
    def locked(
        self, query: str, params: tuple[Any, ...] = (), database: str | None = None
    ) -> Iterator[Callable[[], None]]:
        """The rows ``query`` (a ``SELECT ... FOR UPDATE``) reads, locked by another
        connection's open transaction until the block ends or calls the function given."""
        with backends.connect(self.backend, database or self.history_name) as conn:
            cursor = conn.cursor()
            cursor.execute("BEGIN")
            cursor.execute(query.replace("?", "%s"), params)
            held = [True]

            def release() -> None:
                if held:
                    held.clear()
                    cursor.execute("ROLLBACK")

            try:
                yield release
            finally:
                release()

    def waiting_updates(self) -> int:
        """How many UPDATEs of the history table wait for a row lock (another's transaction)."""
        if self.backend == "postgresql":
            query = (
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                f"AND wait_event_type = 'Lock' AND query LIKE 'UPDATE \"{TABLE}\"%%'"
            )
        else:
            # The UPDATEs in progress: while a test holds a row lock, those waiting
            # for it (InnoDB's own view of lock waits, INNODB_TRX, misses some).
            query = (
                "SELECT count(*) FROM information_schema.PROCESSLIST "
                "WHERE DB = DATABASE() AND COMMAND = 'Query' "
                f"AND INFO LIKE 'UPDATE `{TABLE}`%%'"
            )
        return int(self.sql(query)[0][0])

    def tables(self, database: str) -> set[str]:
        if self.backend == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        elif self.backend == "postgresql":
            query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        else:
            query = "SHOW TABLES"
        return {row[0] for row in self.sql(query, database=database)}

    def rows(self, command_name: str | None = None, table: str = TABLE) -> list[dict[str, Any]]:
        query = f"SELECT {', '.join(COLUMNS)} FROM {table}"
        params: tuple[Any, ...] = ()
        if command_name:
            query += " WHERE command_name = ?"
            params = (command_name,)
        return [
            dict(zip(COLUMNS, row, strict=False))
            for row in self.sql(query + " ORDER BY id", params)
        ]

    def reset(self) -> None:
        self.sql(f"DELETE FROM {TABLE}")
        self.effects.unlink(missing_ok=True)
        self.started.unlink(missing_ok=True)

    def effect_lines(self) -> list[str]:
        return self.effects.read_text().splitlines() if self.effects.exists() else []

    # -- processes ------------------------------------------------------------
    def spawn(
        self, *argv: str, env: dict[str, str] | None = None, wrapper: Sequence[str] = ()
    ) -> subprocess.Popen[str]:
        """Start ``manage.py argv`` (under ``wrapper``, such as an ``unshare`` command line)."""
        return subprocess.Popen(
            [*wrapper, sys.executable, str(MANAGE), *argv],
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )

    @staticmethod
    def wait(process: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
        """``process.communicate()``; a process still running at ``timeout`` fails the
        test with the stacks of its threads (manage.py prints them on SIGUSR1)."""
        try:
            return process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGUSR1)
            time.sleep(1)
            process.kill()
            stdout, stderr = process.communicate()
            raise AssertionError(
                f"still running after {timeout:g} s: {process.args}\n"
                f"stdout:\n{stdout}\nstderr (with its threads' stacks):\n{stderr}"
            ) from None

    def run(
        self,
        *argv: str,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        wrapper: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        process = self.spawn(*argv, env=env, wrapper=wrapper)
        stdout, stderr = self.wait(process, timeout)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def kill_once_started(
        self, *argv: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.Popen[str]:
        """Start ``manage.py argv`` and SIGKILL it, by its PID, once its body has begun."""
        process = self.spawn(*argv, env=env)
        try:
            self.wait_until_started(process, timeout)
        finally:
            process.kill()
            self.wait(process)
        return process

    def wait_until_started(self, process: subprocess.Popen[str], timeout: float = 60) -> None:
        """Block until the command's body has begun (it writes MC_TEST_STARTED)."""
        self.wait_for_file(process, self.started, timeout)

    @staticmethod
    def wait_for_file(process: subprocess.Popen[str], path: Path, timeout: float = 60) -> None:
        """Block until ``process``, still running, has written ``path``."""
        deadline = time.monotonic() + timeout
        while not path.exists():
            if process.poll() is not None:
                raise AssertionError(f"exited early: {process.communicate()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{path.name} was not written within {timeout:g} s")
            time.sleep(0.02)

    def race(
        self, count: int, *argv: str, env: dict[str, str] | None = None, timeout: float = 180
    ) -> list[subprocess.CompletedProcess[str]]:
        """Start ``count`` processes that all begin ``argv`` at the same moment.

        Each process starts Django, then blocks reading a FIFO; once all are
        blocked, one write of ``count`` bytes releases them together.
        """
        gate = Path(tempfile.mkdtemp(dir=self.workdir)) / "gate"
        os.mkfifo(gate)
        processes = [
            self.spawn(*argv, env={**(env or {}), "MC_TEST_GATE": str(gate)}) for _ in range(count)
        ]
        deadline = time.monotonic() + timeout
        while len(list(gate.parent.glob("gate.ready.*"))) < count:
            if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
                for p in processes:
                    p.kill()
                raise AssertionError([p.communicate() for p in processes])
            time.sleep(0.01)
        writer = os.open(gate, os.O_WRONLY)
        try:
            os.write(writer, b"x" * count)
            results = []
            for process in processes:
                stdout, stderr = process.communicate(timeout=timeout)
                results.append(
                    subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
                )
        finally:
            os.close(writer)
        return results
