"""Config problems: where each one is (line and field) and how a list of them fits one screen.

A config with forty copies of one mistake (every SLO of a model, say) must not scroll the first
problems away: the same message at the same field of sibling list items is printed once, with
the items named as ranges (`slos[3, 7, 12–40].window`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

PathPart = str | int
SCREEN = 20
"""Lines `render` prints at most, the heading and the `... and N more` line included."""


@dataclass(frozen=True)
class Problem:
    line: int | None
    path: tuple[PathPart, ...]
    message: str

    def render(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        field = ".".join(str(p) for p in self.path) or "(top level)"
        return f"{where}: {field}: {self.message}"


class ConfigError(Exception):
    """The config cannot be used; `render()` lists every problem within one screen."""

    def __init__(self, filename: str, problems: list[Problem]):
        super().__init__(f"{len(problems)} problem(s) in {filename}")
        self.filename = filename
        self.problems = problems

    def render(self, limit: int = SCREEN) -> str:
        """At most `limit` lines: repeated problems grouped, then how many more there are."""
        groups = group(self.problems)
        room = limit - 1  # below the heading
        if len(groups) > room:
            groups = groups[: room - 1]  # and keep a line to say how many are left out
        lines = [f"invalid config {self.filename}: {len(self.problems)} problem(s)"]
        lines += [render_group(members, self.filename) for members in groups]
        shown = sum(len(members) for members in groups)
        if shown < len(self.problems):
            lines.append(f"... and {len(self.problems) - shown} more problem(s)")
        return "\n".join(lines)


def _key(problem: Problem) -> tuple[Any, ...]:
    """Equal for the same message at the same field of different items of one list."""
    path = list(problem.path)
    for i in range(len(path) - 1, -1, -1):
        if isinstance(path[i], int):
            path[i] = None  # type: ignore[call-overload]
            break
    return (tuple(path), problem.message)


def group(problems: Sequence[Problem]) -> list[list[Problem]]:
    """Problems grouped by `_key`, in the order each group first appears."""
    groups: dict[tuple[Any, ...], list[Problem]] = {}
    for problem in problems:
        groups.setdefault(_key(problem), []).append(problem)
    return list(groups.values())


def ranges(numbers: Sequence[int]) -> str:
    """`3, 7, 12–40`: runs of three or more as a range."""
    values = sorted(set(numbers))
    parts: list[str] = []
    start = prev = values[0]
    for value in [*values[1:], None]:
        if value is not None and value == prev + 1:
            prev = value
            continue
        if prev - start >= 2:
            parts.append(f"{start}–{prev}")
        else:
            parts.extend(str(v) for v in range(start, prev + 1))
        if value is not None:
            start = prev = value
    return ", ".join(parts)


def render_group(members: list[Problem], filename: str) -> str:
    first = members[0]
    if len(members) == 1:
        return first.render(filename)
    at = max(i for i, p in enumerate(first.path) if isinstance(p, int))
    indices = [int(p.path[at]) for p in members]
    parts = [str(p) for p in first.path]
    field = ".".join(parts[:at]) + f"[{ranges(indices)}]"
    field += "".join(f".{p}" for p in parts[at + 1 :])
    where = f"{filename}:{first.line}" if first.line else filename
    return f"{where}: {field}: {first.message} ({len(members)} times)"


def line_of(tree: CommentedMap, path: tuple[PathPart, ...]) -> int | None:
    """1-based line of the deepest node on `path` that exists in the YAML tree."""
    line: int | None = None
    node: Any = tree
    for part in path:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    if line is None and isinstance(tree, CommentedMap):
        line = tree.lc.line + 1
    return line
