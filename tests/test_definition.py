"""What a command declares: split, validated, one check id per problem."""

from __future__ import annotations

import pytest

from managed_commands import definition, requirements
from managed_commands.exceptions import InvalidDefinition
from tests.testapp.management.commands import noop_managed

WHERE = "tests.testapp.management.commands.noop_managed.Command"


def test_split_requires_keeps_the_declared_order_of_each_kind():
    assert definition.split_requires(["b", "shop.0002_price", "a", "auth.0001_initial"]) == (
        ("b", "a"),
        (("shop", "0002_price"), ("auth", "0001_initial")),
    )
    assert definition.split_requires([]) == ((), ())


def test_a_valid_command_has_no_problems_and_reads_with_its_module():
    read = definition.read(noop_managed.Command)
    assert definition.problems(noop_managed.Command) == []
    assert (read.name, read.app_label, read.module) == (
        "noop_managed",
        "testapp",
        "tests.testapp.management.commands.noop_managed",
    )
    assert read.source_file == noop_managed.__file__
    assert read.current_source_hash() == definition.source_hash(read.module)


def test_a_definition_is_read_again_once_its_class_changes(monkeypatch):
    first = definition.read(noop_managed.Command)
    assert definition.read(noop_managed.Command) == first  # the same while nothing changed
    monkeypatch.setattr(noop_managed.Command, "requires", ["load_catalog"])
    assert definition.read(noop_managed.Command).requires == ("load_catalog",)
    noop_managed.Command.requires.append("shop.0002_price")  # changed in place
    assert definition.read(noop_managed.Command).requires == ("load_catalog", "shop.0002_price")
    monkeypatch.setattr(noop_managed.Command, "run_once", True)
    assert definition.read(noop_managed.Command).run_once is True
    monkeypatch.setattr(noop_managed.Command, "run_once", 1)  # equal to True, yet not a flag
    with pytest.raises(InvalidDefinition, match="run_once must be True or False"):
        definition.read(noop_managed.Command)


def test_each_problem_has_its_own_id(monkeypatch):
    monkeypatch.setattr(noop_managed.Command, "run_once", "yes")
    monkeypatch.setattr(noop_managed.Command, "allow_concurrent", 1)
    monkeypatch.setattr(noop_managed.Command, "requires", ["noop_managed"])
    monkeypatch.setattr(noop_managed.Command, "sensitive_options", "dsn")
    found = definition.problems(noop_managed.Command)
    assert [(problem.id, problem.message) for problem in found] == [
        ("managed_commands.E002", f"{WHERE}.run_once must be True or False, not 'yes'."),
        ("managed_commands.E002", f"{WHERE}.allow_concurrent must be True or False, not 1."),
        ("managed_commands.E008", f"{WHERE}.requires names the command itself ('noop_managed')."),
        (
            "managed_commands.E009",
            f"{WHERE}.sensitive_options must be a list of option names, not 'dsn'.",
        ),
    ]
    assert all(problem.hint for problem in found)
    with pytest.raises(InvalidDefinition) as raised:
        definition.read(noop_managed.Command)
    assert str(raised.value) == " ".join(problem.message for problem in found)


@pytest.mark.parametrize("requires", ["once", ["once", ""], [3]])
def test_requires_that_is_not_a_list_of_names_is_e007(monkeypatch, requires):
    monkeypatch.setattr(noop_managed.Command, "requires", requires)
    [problem] = definition.problems(noop_managed.Command)
    assert problem.id == "managed_commands.E007"


@pytest.mark.parametrize("lease", [0, -5, "60", True, float("nan")])
def test_a_lease_that_is_not_a_positive_number_is_e020(monkeypatch, lease):
    monkeypatch.setattr(noop_managed.Command, "lease_seconds", lease)
    [problem] = definition.problems(noop_managed.Command)
    assert (problem.id, problem.message) == (
        "managed_commands.E020",
        f"{WHERE}.lease_seconds must be None or a number of seconds > 0, not {lease!r}.",
    )


def test_a_command_may_have_a_lease_of_its_own(monkeypatch):
    assert definition.read(noop_managed.Command).lease_seconds is None
    monkeypatch.setattr(noop_managed.Command, "lease_seconds", 300)
    assert definition.read(noop_managed.Command).lease_seconds == 300.0


def test_resume_must_be_a_flag_e002(monkeypatch):
    monkeypatch.setattr(noop_managed.Command, "resume", "yes")
    [problem] = definition.problems(noop_managed.Command)
    assert (problem.id, problem.message) == (
        "managed_commands.E002",
        f"{WHERE}.resume must be True or False, not 'yes'.",
    )


def test_resume_with_overlapping_runs_is_e021(monkeypatch):
    monkeypatch.setattr(noop_managed.Command, "resume", True)
    assert definition.read(noop_managed.Command).resumes
    monkeypatch.setattr(noop_managed.Command, "allow_concurrent", True)
    [problem] = definition.problems(noop_managed.Command)
    assert problem.id == "managed_commands.E021"
    assert "would both continue from the same saved cursor" in problem.message
    assert problem.hint


@pytest.mark.parametrize("attribute", ["statement_timeout", "lock_timeout", "time_limit"])
@pytest.mark.parametrize("value", [0, -1, "30", True, float("nan"), float("inf")])
def test_a_timeout_that_is_not_a_positive_number_is_e023(monkeypatch, attribute, value):
    monkeypatch.setattr(noop_managed.Command, attribute, value)
    [problem] = definition.problems(noop_managed.Command)
    assert (problem.id, problem.message) == (
        "managed_commands.E023",
        f"{WHERE}.{attribute} must be None or a number of seconds > 0, not {value!r}.",
    )
    assert "for example 30 or 0.5" in problem.hint


def test_timeouts_are_read_as_seconds(monkeypatch):
    read = definition.read(noop_managed.Command)
    assert (read.statement_timeout, read.lock_timeout, read.time_limit) == (None, None, None)
    assert not read.timeouts
    monkeypatch.setattr(noop_managed.Command, "statement_timeout", 2)
    monkeypatch.setattr(noop_managed.Command, "lock_timeout", 0.5)
    monkeypatch.setattr(noop_managed.Command, "time_limit", 60)
    read = definition.read(noop_managed.Command)
    assert (read.statement_timeout, read.lock_timeout, read.time_limit) == (2.0, 0.5, 60.0)
    assert read.timeouts


def test_phase_and_tags_default_to_post_migrate_and_none():
    read = definition.read(noop_managed.Command)
    assert (read.phase, read.tags) == ("post_migrate", frozenset())


def test_phase_and_tags_are_carried_on_the_definition(monkeypatch):
    monkeypatch.setattr(noop_managed.Command, "phase", "pre_migrate")
    monkeypatch.setattr(noop_managed.Command, "tags", ["search", "search", "cache"])
    read = definition.read(noop_managed.Command)
    assert (read.phase, read.tags) == ("pre_migrate", frozenset({"search", "cache"}))


@pytest.mark.parametrize("phase", ["premigrate", "", None, ["pre_migrate"]])
def test_a_phase_that_is_not_pre_or_post_migrate_is_e026(monkeypatch, phase):
    monkeypatch.setattr(noop_managed.Command, "phase", phase)
    [problem] = definition.problems(noop_managed.Command)
    assert (problem.id, problem.message) == (
        "managed_commands.E026",
        f"{WHERE}.phase must be 'pre_migrate' or 'post_migrate', not {phase!r}.",
    )
    assert "pre_migrate" in problem.hint and "post_migrate" in problem.hint


@pytest.mark.parametrize("tags", ["search", {"search", ""}, [3], None])
def test_tags_that_are_not_non_empty_strings_are_e027(monkeypatch, tags):
    monkeypatch.setattr(noop_managed.Command, "tags", tags)
    [problem] = definition.problems(noop_managed.Command)
    assert (problem.id, problem.message) == (
        "managed_commands.E027",
        f"{WHERE}.tags must be a set of non-empty strings, not {tags!r}.",
    )
    assert problem.hint


def test_replaces_is_carried_with_the_names_its_history_is_under(monkeypatch):
    monkeypatch.setattr(noop_managed.Command, "replaces", ["old_noop", "otherapp.older_noop"])
    read = definition.read(noop_managed.Command)
    assert read.replaces == ("old_noop", "otherapp.older_noop")
    assert read.replaced_names == ("old_noop", "older_noop")
    assert read.history_names == ("noop_managed", "old_noop", "older_noop")


@pytest.mark.parametrize(
    ("replaces", "message"),
    [
        ("old_noop", "replaces must be a list of command names, not 'old_noop'."),
        (None, "replaces must be a list of command names, not None."),
        ([3], "replaces has 3, which is not 'old_name' or 'app_label.old_name'."),
        (["a.b.c"], "replaces has 'a.b.c', which is not 'old_name' or 'app_label.old_name'."),
        (["shop."], "replaces has 'shop.', which is not 'old_name' or 'app_label.old_name'."),
        (["noop_managed"], "replaces names the command itself ('noop_managed')."),
        (["otherapp.noop_managed"], "replaces names the command itself ('noop_managed')."),
    ],
)
def test_replaces_that_is_not_a_list_of_old_names_is_e029(monkeypatch, replaces, message):
    monkeypatch.setattr(noop_managed.Command, "replaces", replaces)
    [problem] = definition.problems(noop_managed.Command)
    assert (problem.id, problem.message) == ("managed_commands.E029", f"{WHERE}.{message}")
    assert problem.hint


def test_the_names_an_installed_command_replaces_are_read_from_its_class(monkeypatch):
    assert requirements.names_replaced_by("noop_managed") == ()
    assert requirements.names_replaced_by("no_such_command") == ()
    monkeypatch.setattr(noop_managed.Command, "replaces", ["shop.old_noop"])
    assert requirements.names_replaced_by("noop_managed") == ("old_noop",)
    monkeypatch.setattr(noop_managed.Command, "replaces", "old_noop")  # invalid: E029's
    assert requirements.names_replaced_by("noop_managed") == ()
