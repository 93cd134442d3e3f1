"""The requires graph on its own: no database, no Django settings needed."""

from __future__ import annotations

import pytest

from managed_commands.exceptions import CircularRequirement, UnknownRequirement
from managed_commands.graph import RequirementGraph


def graph(nodes, edges):
    """``nodes``: {name: sort key}; ``edges``: [(name, requirement)]."""
    built = RequirementGraph()
    for name, key in nodes.items():
        built.add_node(name, key)
    for name, requirement in edges:
        built.add_dependency(name, requirement)
    return built


def test_plan_puts_each_command_after_what_it_requires():
    built = graph({"a": 0, "b": 0, "c": 0}, [("a", "b"), ("b", "c")])
    assert built.plan(["a", "b", "c"]) == ["c", "b", "a"]


def test_ties_go_by_sort_key_then_name_whatever_the_order_given():
    built = graph({"zeta": 0, "alpha": 1, "beta": 1, "gamma": 0}, [])
    assert built.plan(["alpha", "beta", "gamma", "zeta"]) == ["gamma", "zeta", "alpha", "beta"]
    assert built.plan(["zeta", "beta", "gamma", "alpha"]) == ["gamma", "zeta", "alpha", "beta"]


def test_a_freed_command_with_a_smaller_key_goes_before_waiting_ones():
    # b (key 1) only needs a (key 2); c (key 3) needs nothing: a, then b, then c.
    built = graph({"a": 2, "b": 1, "c": 3}, [("b", "a")])
    assert built.plan(["a", "b", "c"]) == ["a", "b", "c"]


def test_requirements_through_commands_outside_the_plan_still_order_it():
    # c requires b, which is done (not planned) and requires a, which is pending.
    built = graph({"a": 1, "b": 0, "c": 0}, [("c", "b"), ("b", "a")])
    assert built.plan(["c", "a"]) == ["a", "c"]


def test_shared_outside_requirements_are_walked_once():
    built = graph(
        {"a": 0, "b": 0, "c": 0, "d": 0, "e": 1},
        [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e")],
    )
    assert built.plan(["a", "e"]) == ["e", "a"]


def test_only_the_targets_are_planned_and_outside_keys_do_not_delay_them():
    # b (app 0) requires z (app 2, done); a (app 1) is free: b still goes first.
    built = graph({"a": 1, "b": 0, "z": 2}, [("b", "z")])
    assert built.plan(["a", "b"]) == ["b", "a"]


def test_requirements_through_a_chain_of_outside_commands_order_the_plan():
    built = graph(
        {"a": 1, "b": 0, "c": 0, "d": 0, "e": 2},
        [("e", "d"), ("d", "c"), ("c", "b"), ("b", "a"), ("b", "ghost")],
    )
    assert built.plan(["e", "a"]) == ["a", "e"]


def test_missing_lists_every_unknown_requirement():
    built = graph({"a": 0, "b": 0}, [("b", "x"), ("a", "y"), ("a", "b"), ("a", "b")])
    assert built.missing() == [("a", "y"), ("b", "x")]
    assert built.requires["a"] == ["y", "b"]
    with pytest.raises(UnknownRequirement) as raised:
        built.validate()
    assert str(raised.value) == (
        "'a' requires 'y', which is not a managed command. "
        "Run 'python manage.py check' for details."
    )


def test_cycles_are_closed_paths_from_the_smallest_name():
    built = graph(
        {"a": 0, "b": 0, "c": 0, "d": 0, "e": 0, "f": 0, "g": 0},
        [("c", "a"), ("a", "b"), ("b", "c"), ("d", "d"), ("e", "a"), ("f", "g"), ("g", "f")],
    )
    assert built.cycles() == [["a", "b", "c", "a"], ["d", "d"], ["f", "g", "f"]]
    with pytest.raises(CircularRequirement) as raised:
        built.validate()
    assert str(raised.value) == (
        "The requires of these commands form a cycle (each requires the next): "
        "a -> b -> c -> a. Remove one of these requirements."
    )


def test_the_shortest_way_round_is_reported():
    built = graph(
        {"a": 0, "b": 0, "c": 0, "d": 0},
        [("a", "b"), ("b", "c"), ("c", "d"), ("c", "a"), ("d", "a")],
    )
    assert built.cycles() == [["a", "b", "c", "a"]]


def test_a_consistent_graph_validates_and_has_no_cycles():
    built = graph({"a": 0, "b": 0}, [("a", "b")])
    built.validate()
    assert built.cycles() == [] and built.missing() == []


def test_planning_a_cycle_without_validating_raises_instead_of_dropping_commands():
    built = graph({"a": 0, "b": 0, "c": 0}, [("a", "b"), ("b", "a")])
    with pytest.raises(CircularRequirement) as raised:
        built.plan(["a", "b", "c"])
    assert str(raised.value) == "These commands require each other in a cycle: a, b."


def test_a_long_chain_does_not_hit_the_recursion_limit():
    names = [f"n{i:05d}" for i in range(5000)]
    built = graph(dict.fromkeys(names, 0), list(zip(names[1:], names[:-1], strict=False)))
    assert built.cycles() == []
    assert built.plan(reversed(names)) == names
