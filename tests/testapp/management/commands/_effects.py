"""Side effects the tests can count: one line per handle() call, in a file."""

import os
import time
from pathlib import Path


def note(name: str) -> None:
    path = os.environ.get("MC_TEST_EFFECTS")
    if path:
        with open(path, "a", encoding="utf-8") as effects:
            effects.write(f"{name} {os.getpid()}\n")


def effects_so_far() -> list[str]:
    path = os.environ.get("MC_TEST_EFFECTS")
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as effects:
        return effects.read().splitlines()


def hold(seconds: float) -> None:
    """Signal that the body started (MC_TEST_STARTED file), then keep running for
    ``seconds``, or until the file named by MC_TEST_RELEASE exists when that is set."""
    started = os.environ.get("MC_TEST_STARTED")
    if started:
        Path(started).write_text(str(os.getpid()))
    release = os.environ.get("MC_TEST_RELEASE")
    if not release:
        time.sleep(seconds)
        return
    deadline = time.monotonic() + seconds
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)
