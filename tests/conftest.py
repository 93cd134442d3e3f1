from __future__ import annotations

import pytest

from tests import backends
from tests.processes import ProcessProject


def pytest_configure(config):
    chosen = backends.requested()
    if chosen and chosen not in backends.ALL:
        raise pytest.UsageError(f"MC_TEST_DB must be one of {', '.join(backends.ALL)}.")
    reason = backends.unavailable(chosen) if chosen else None
    if reason:
        raise pytest.UsageError(f"MC_TEST_DB={chosen} was asked for but {reason}")


def pytest_generate_tests(metafunc):
    if "project" in metafunc.fixturenames:
        metafunc.parametrize("backend", backends.process_backends(), scope="session")
        marker = metafunc.definition.get_closest_marker("layouts")
        layouts = marker.args if marker else ("single",)
        metafunc.parametrize("layout", layouts, scope="session")


@pytest.fixture(scope="session")
def migrated_project(backend, layout, tmp_path_factory):
    reason = backends.unavailable(backend)
    if reason:
        pytest.skip(f"{reason} (set MC_TEST_DB={backend} to require it)")
    workdir = tmp_path_factory.mktemp(f"proc-{backend}-{layout}")
    project = ProcessProject(backend, workdir, layout).create()
    yield project
    project.drop()


@pytest.fixture
def project(migrated_project):
    """A migrated database on one backend, emptied, with manage.py helpers."""
    migrated_project.reset()
    return migrated_project
