"""A one-line description of the machine and software a benchmark ran on."""

from __future__ import annotations

import os
import platform
import sqlite3
from pathlib import Path

import django

from tests import backends


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.0f} GiB RAM"
    except OSError:
        pass
    return "RAM unknown"


def _postgresql() -> str:
    if backends.unavailable("postgresql"):
        return "PostgreSQL not reachable"
    with backends.connect("postgresql") as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        fsync = conn.execute("SHOW synchronous_commit").fetchone()[0]
    return f"PostgreSQL {version.split()[0]} (synchronous_commit={fsync})"


def _mariadb() -> str:
    if backends.unavailable("mariadb"):
        return "MariaDB not reachable"
    with backends.connect("mariadb") as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT VERSION(), @@innodb_flush_log_at_trx_commit")
        version, flush = cursor.fetchone()
    return f"MariaDB {version.split('-')[0]} (innodb_flush_log_at_trx_commit={flush})"


def describe() -> str:
    return (
        f"{_cpu_model()}, {os.cpu_count()} cores, {_memory_gib()}; {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, Django "
        f"{django.get_version()}, SQLite {sqlite3.sqlite_version} (file on local disk), "
        f"{_postgresql()}, {_mariadb()}"
    )
