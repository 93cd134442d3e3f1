"""Django's own ``user_commands`` tests pass with every command of that app managed.

The tests of the installed Django version come from its sdist on PyPI
(``pip download``), cached in the temporary directory and extracted in part:
``tests/runtests.py`` runs ``user_commands`` with the settings and the import
hook of ``tests/django_suite`` (see its ``__init__``), on the backend of the run.
Without the sdist the test skips with the reason, except when ``CI`` is set,
where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.django_suite import hook

# Its outcome depends on the Django version: it runs in every CI entry.
pytestmark = [pytest.mark.processes, pytest.mark.django]

ROOT = Path(__file__).resolve().parent.parent
SUITE = Path(__file__).resolve().parent / "django_suite"
DJANGO = version("Django")
#: Where the sdists of Django are kept between runs.
CACHE = Path(tempfile.gettempdir()) / "managed_commands_django_sdists"
#: What runtests.py needs to run user_commands, under the sdist's tests/:
#: .coveragerc because runtests.py names it in COVERAGE_PROCESS_START, which
#: coverage's .pth file reads in every process; admin_scripts for its
#: AdminScriptTestCase.
NEEDED = ("runtests.py", ".coveragerc", "urls.py", "user_commands/", "admin_scripts/")

#: Django tests that fail by design with a managed command: "test id": why.
#: Exactly these must fail, so a new failure, or one of these passing, is seen.
EXPECTED_DIFFERENCES: dict[str, str] = {}


def _download_sdist() -> Path:
    """The sdist of the installed Django, from the cache or from PyPI through pip."""
    sdist = CACHE / f"django-{DJANGO}.tar.gz"
    if sdist.exists() and tarfile.is_tarfile(sdist):
        return sdist
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as download:
        pip = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                *("--disable-pip-version-check", "--no-binary", "Django"),
                *("--dest", download, f"Django=={DJANGO}"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        found = list(Path(download).glob("*.tar.gz"))
        if pip.returncode or len(found) != 1 or not tarfile.is_tarfile(found[0]):
            raise RuntimeError(
                f"pip download of Django=={DJANGO}'s sdist failed (exit {pip.returncode}): "
                f"{pip.stderr.strip()[-2000:]}"
            )
        # Runs in parallel may download it too: each puts a whole file in place.
        os.replace(found[0], sdist)
    return sdist


@pytest.fixture(scope="session")
def django_tests(tmp_path_factory) -> Path:
    """Django's tests/ directory with what runtests.py needs for user_commands."""
    try:
        sdist = _download_sdist()
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        problem = f"Django {DJANGO}'s tests could not be obtained: {exc}"
        if os.environ.get("CI"):
            pytest.fail(f"{problem}. CI must run Django's user_commands tests, not skip them.")
        pytest.skip(problem)
    destination = tmp_path_factory.mktemp("django-tests")
    with tarfile.open(sdist) as tar:
        members = [
            member
            for member in tar.getmembers()
            if member.name.partition("/")[2].startswith(tuple(f"tests/{n}" for n in NEEDED))
        ]
        tar.extractall(destination, members=members, filter="data")
    (tests,) = destination.glob("*/tests")
    # Every Python process of the run imports it: runtests.py, and the
    # manage.py processes of CommandRunTests (their PYTHONPATH has this directory).
    shutil.copy(SUITE / "sitecustomize.py", tests / "sitecustomize.py")
    return tests


def _outcomes(events: list[dict]) -> dict[str, set[str]]:
    outcomes: dict[str, set[str]] = {}
    for event in events:
        if event["event"] == "test":
            outcomes.setdefault(event["id"], set()).add(event["outcome"])
    return outcomes


def test_djangos_user_commands_tests_pass_with_every_command_managed(
    backend, django_tests, tmp_path, report
):
    events_file = tmp_path / "events.jsonl"
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("DJANGO_") and name != "MC_TEST_DB_NAME"
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(django_tests), str(ROOT)]),
        MC_DJANGO_SUITE_ROOT=str(ROOT),
        MC_TEST_DB=backend,
        MC_TEST_SQLITE_DIR=str(tmp_path),
        **{hook.REPORT: str(events_file)},
    )
    run = subprocess.run(
        [
            *(sys.executable, "runtests.py", "--settings=tests.django_suite.settings"),
            *("--parallel=1", "--noinput", "user_commands"),
        ],
        cwd=django_tests,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = f"{run.stdout}{run.stderr}"
    events = (
        [json.loads(line) for line in events_file.read_text().splitlines()]
        if events_file.exists()
        else []
    )
    outcomes = _outcomes(events)
    # Every test Django's runner found has an outcome.
    found = re.search(r"^Found (\d+) test", output, re.MULTILINE)
    assert found and outcomes, f"runtests.py ran no tests (exit {run.returncode}):\n{output}"
    assert int(found[1]) == len(outcomes), output

    # The commands were managed: each one in runtests.py's process, some in the
    # manage.py processes the tests start, and their runs were recorded.
    (runner,) = {event["pid"] for event in events if event["event"] == "test"}
    commands = {
        f"{hook.PACKAGE}{path.stem}"
        for path in (django_tests / "user_commands" / "management" / "commands").glob("*.py")
        if path.stem != "__init__"
    }
    managed = {e["module"] for e in events if e["event"] == "managed" and e["pid"] == runner}
    assert managed == commands
    assert any(e["event"] == "managed" and e["pid"] != runner for e in events), output
    # ... by this checkout's managed_commands, in every process.
    libraries = {e["library"] for e in events if e["event"] == "managed"}
    assert libraries == {str(ROOT / "managed_commands" / "__init__.py")}
    runs = [(e["command"], e["status"]) for e in events if e["event"] == "run"]
    assert ("dance", "succeeded") in runs

    failed = {
        test for test, seen in outcomes.items() if seen & {"failed", "error", "unexpected success"}
    }
    new = failed - EXPECTED_DIFFERENCES.keys()
    passing = EXPECTED_DIFFERENCES.keys() - failed
    assert not new, f"Django's tests that fail with managed commands: {sorted(new)}\n{output}"
    assert not passing, f"Expected differences that no longer fail: {sorted(passing)}"
    assert run.returncode == (1 if failed else 0), output

    skipped = sum(1 for seen in outcomes.values() if seen == {"skipped"})
    report(
        f"Django {DJANGO}'s user_commands tests on {backend}: {len(outcomes)} ran, "
        f"{len(outcomes) - len(failed) - skipped} passed, {skipped} skipped, {len(failed)} "
        f"expected differences; {len(commands)} managed commands, {len(runs)} runs recorded"
    )
