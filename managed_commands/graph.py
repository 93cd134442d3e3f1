"""The graph of ``requires`` between managed commands: pure data, no database, no Django.

Nodes are command names; an edge says "this command requires that one".
The graph finds requirements that name no node and cycles, and plans a
stable topological order: among the commands free to run next, the one
with the smallest sort key (app order, then name) goes first.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from typing import Any

from managed_commands.exceptions import CircularRequirement, UnknownRequirement


class RequirementGraph:
    """Managed commands and what each requires."""

    def __init__(self) -> None:
        self.sort_keys: dict[str, Any] = {}
        self.requires: dict[str, list[str]] = {}

    def add_node(self, name: str, sort_key: Any = ()) -> None:
        """Add command ``name``; ``sort_key`` orders it among commands free to run together."""
        self.sort_keys[name] = (sort_key, name)
        self.requires.setdefault(name, [])

    def add_dependency(self, name: str, requirement: str) -> None:
        """Record that ``name`` requires ``requirement`` (which may be added later, or never)."""
        self.requires.setdefault(name, [])
        if requirement not in self.requires[name]:
            self.requires[name].append(requirement)

    def missing(self) -> list[tuple[str, str]]:
        """Every (command, requirement) pair whose requirement is not a node."""
        return [
            (name, requirement)
            for name in sorted(self.requires)
            for requirement in self.requires[name]
            if requirement not in self.sort_keys
        ]

    def cycles(self) -> list[list[str]]:
        """One cycle per group of commands that require each other, as a closed path.

        Each path starts and ends with the group's smallest name, for example
        ``["a", "b", "a"]``.
        """
        found = []
        for group in self._strongly_connected():
            start = min(group)
            if len(group) > 1 or start in self.requires.get(start, ()):
                found.append(self._cycle_through(start, group))
        return sorted(found)

    def validate(self) -> None:
        """Raise ``UnknownRequirement`` or ``CircularRequirement`` for the first problem."""
        for name, requirement in self.missing():
            raise UnknownRequirement(
                f"'{name}' requires '{requirement}', which is not a managed command. "
                f"Run 'python manage.py check' for details."
            )
        for cycle in self.cycles():
            raise CircularRequirement(
                f"The requires of these commands form a cycle (each requires the next): "
                f"{' -> '.join(cycle)}. Remove one of these requirements."
            )

    def plan(self, targets: Iterable[str]) -> list[str]:
        """Order ``targets`` so that each comes after every target it requires.

        Requirements through commands outside ``targets`` count too. Among the
        targets free to go next, the smallest sort key goes first, so the
        order depends only on the graph, never on the order of ``targets``.
        Call ``validate()`` first: a cycle among the targets raises
        ``CircularRequirement``.
        """
        wanted = set(targets)
        before = {name: self._nearest_required(name, wanted) for name in wanted}
        waiting_on = {name: len(required) for name, required in before.items()}
        unlocks: dict[str, list[str]] = {name: [] for name in wanted}
        for name, required in before.items():
            for requirement in required:
                unlocks[requirement].append(name)
        ready = [self.sort_keys[name] for name in wanted if not waiting_on[name]]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            _, name = heapq.heappop(ready)
            order.append(name)
            for follower in unlocks[name]:
                waiting_on[follower] -= 1
                if not waiting_on[follower]:
                    heapq.heappush(ready, self.sort_keys[follower])
        if len(order) < len(wanted):
            stuck = sorted(wanted - set(order))
            raise CircularRequirement(
                f"These commands require each other in a cycle: {', '.join(stuck)}."
            )
        return order

    def _nearest_required(self, name: str, wanted: set[str]) -> set[str]:
        # The wanted commands ``name`` requires with no wanted command in between:
        # enough to order them, and linear on a long chain.
        found: set[str] = set()
        seen: set[str] = set()
        stack = list(self._edges(name))
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            if node in wanted:
                found.add(node)
            else:
                stack.extend(self._edges(node))
        return found

    def _strongly_connected(self) -> list[set[str]]:
        # Tarjan's algorithm, iterative so that long chains cannot hit the recursion limit.
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        on_stack: set[str] = set()
        stack: list[str] = []
        groups: list[set[str]] = []
        for root in sorted(self.sort_keys):
            if root in index:
                continue
            work = [(root, iter(self._edges(root)))]
            index[root] = low[root] = len(index)
            stack.append(root)
            on_stack.add(root)
            while work:
                node, edges = work[-1]
                step = next(edges, None)
                if step is None:
                    work.pop()
                    if work:
                        parent = work[-1][0]
                        low[parent] = min(low[parent], low[node])
                    if low[node] == index[node]:
                        group = set()
                        while True:
                            member = stack.pop()
                            on_stack.discard(member)
                            group.add(member)
                            if member == node:
                                break
                        groups.append(group)
                elif step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(self._edges(step))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
        return groups

    def _edges(self, name: str) -> list[str]:
        return sorted(r for r in self.requires.get(name, ()) if r in self.sort_keys)

    def _cycle_through(self, start: str, group: set[str]) -> list[str]:
        # Shortest way back to start inside its group (breadth first, by name).
        came_from: dict[str, str] = {}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for step in self._edges(node):
                if step == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if step in group and step not in came_from:
                    came_from[step] = node
                    queue.append(step)
        raise AssertionError("a strongly connected group always has a cycle")  # pragma: no cover
