"""``--phase`` and ``--tag``: which commands a selection picks, and how it is named."""

from __future__ import annotations

import pytest
from django.test import override_settings

from managed_commands.definition import Definition
from managed_commands.executor import CommandExecutor
from managed_commands.loader import EVERYTHING, Selection


def command(phase: str = "post_migrate", tags: frozenset[str] = frozenset()) -> Definition:
    return Definition("x", "app", True, (), False, (), "mod", phase=phase, tags=tags)


def test_everything_picks_every_command_and_names_nothing():
    assert EVERYTHING.everything
    assert EVERYTHING.picks(command()) and EVERYTHING.picks(command("pre_migrate", {"a"}))
    assert EVERYTHING.describe() == ""


def test_a_phase_picks_the_commands_of_that_phase():
    early = Selection("pre_migrate")
    assert early.picks(command("pre_migrate"))
    assert not early.picks(command("post_migrate"))
    assert early.describe() == " in phase pre_migrate"


def test_tags_pick_the_commands_carrying_any_of_them():
    tagged = Selection(tags=frozenset({"search", "cache"}))
    assert tagged.picks(command(tags=frozenset({"cache", "slow"})))
    assert not tagged.picks(command(tags=frozenset({"slow"})))
    assert not tagged.picks(command())
    assert tagged.describe() == " tagged cache or search"


def test_phase_and_tags_must_both_match():
    both = Selection("post_migrate", frozenset({"search"}))
    assert both.picks(command(tags=frozenset({"search"})))
    assert not both.picks(command("pre_migrate", frozenset({"search"})))
    assert both.describe() == " in phase post_migrate tagged search"


def test_options_select_the_same_again():
    assert EVERYTHING.options() == ""
    both = Selection("pre_migrate", frozenset({"search", "cache"}))
    assert both.options() == " --phase pre_migrate --tag cache --tag search"


PHASES_APP = override_settings(
    INSTALLED_APPS=["managed_commands", "tests.testapp", "tests.phasesapp"]
)


@PHASES_APP
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("selection", "planned"),
    [
        (Selection("pre_migrate"), ["backfill_slugs", "warm_cache"]),
        (Selection(tags=frozenset({"search"})), ["backfill_slugs", "reindex"]),
        (Selection("post_migrate", frozenset({"search", "cache"})), ["reindex"]),
        (Selection(tags=frozenset({"nothing"})), []),
    ],
)
def test_the_executor_plans_only_the_selected_pending_commands(selection, planned):
    assert [c.name for c in CommandExecutor().plan(selection=selection)] == planned
