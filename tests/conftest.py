from __future__ import annotations

import django
import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from tests import backends, browsers
from tests.processes import ProcessProject


def pytest_collection_modifyitems(config, items):
    # Every test that starts manage.py processes asks for a backend: mark it.
    for item in items:
        if "backend" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.processes)

    # MC_TEST_SELECT keeps part of the suite: CI runs each part where it adds something.
    dropped = [
        item
        for item in items
        if not backends.selected(
            bool(item.get_closest_marker("processes")), bool(item.get_closest_marker("django"))
        )
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]

    # A test marked backends(...) that none of this run's backends can run is
    # not collected, rather than reported as skipped.
    def runnable(item) -> bool:
        only = item.get_closest_marker("backends")
        params = getattr(getattr(item, "callspec", None), "params", {})
        return not only or params.get("backend") in only.args

    kept = [item for item in items if runnable(item) and engine_exists(item)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


def engine_exists(item) -> bool:
    """A test marked engine("celery") is not collected on Django < 6.0, where
    django-tasks-celery cannot be installed (django.tasks is Django 6.0's)."""
    engine = item.get_closest_marker("engine")
    return not (engine and "celery" in engine.args and django.VERSION < (6, 0))


def pytest_configure(config):
    chosen = backends.requested()
    if chosen and chosen not in backends.ALL:
        raise pytest.UsageError(f"MC_TEST_DB must be one of {', '.join(backends.ALL)}.")
    if backends.selection() not in backends.SELECTIONS:
        raise pytest.UsageError(f"MC_TEST_SELECT must be one of {', '.join(backends.SELECTIONS)}.")
    reason = backends.unavailable(chosen) if chosen else None
    if reason:
        raise pytest.UsageError(f"MC_TEST_DB={chosen} was asked for but {reason}")


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        chosen = backends.process_backends()
        only = metafunc.definition.get_closest_marker("backends")
        if only:
            chosen = tuple(name for name in chosen if name in only.args)
        metafunc.parametrize("backend", chosen, indirect=True, scope="session")
    if "project" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("layouts")
        layouts = marker.args if marker else ("single",)
        metafunc.parametrize("layout", layouts, scope="session")


@pytest.fixture(scope="session")
def backend(request):
    """A backend for real-process tests; skipped with the reason when it cannot be reached."""
    reason = backends.unavailable(request.param)
    if reason:
        pytest.skip(f"{reason} (set MC_TEST_DB={request.param} to require it)")
    return request.param


@pytest.fixture(scope="session")
def migrated_project(backend, layout, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f"proc-{backend}-{layout}")
    project = ProcessProject(backend, workdir, layout).create()
    yield project
    project.drop()


@pytest.fixture
def project(migrated_project):
    """A migrated database on one backend, emptied, with manage.py helpers."""
    migrated_project.reset()
    return migrated_project


@pytest.fixture
def unapplied_initial():
    """managed_commands.0001_initial marked unapplied for one test (flush keeps that table)."""
    recorder = MigrationRecorder(connection)
    recorder.record_unapplied("managed_commands", "0001_initial")
    yield
    recorder.record_applied("managed_commands", "0001_initial")


_REPORTS: list[str] = []


@pytest.fixture
def report():
    """Add a line to the summary printed at the end of the run (figures tests measured)."""
    return _REPORTS.append


def pytest_terminal_summary(terminalreporter):
    if _REPORTS:
        terminalreporter.section("measured")
        for line in _REPORTS:
            terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (tests/browsers.py), one per test module."""
    with browsers.chromium() as chromium:
        yield chromium
