"""Reads one YAML file into a `VigilConfig`, reporting every problem with its line and field.

Values from the environment (`${NAME}`) are substituted before validation and never echoed
back: problems name the field, not the value, so a secret cannot leak through an error.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from detectors.registry import metric_info, metric_names
from monitor.config.models import VigilConfig

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
PathPart = str | int


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
    """The config cannot be used; `render()` lists every problem, one per line."""

    def __init__(self, filename: str, problems: list[Problem]):
        super().__init__(f"{len(problems)} problem(s) in {filename}")
        self.filename = filename
        self.problems = problems

    def render(self, limit: int = 30) -> str:
        """One screen: the first `limit` problems, then how many more there are."""
        lines = [p.render(self.filename) for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"... and {len(self.problems) - limit} more problem(s)")
        head = f"invalid config {self.filename}: {len(self.problems)} problem(s)"
        return "\n".join([head, *lines])


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> VigilConfig:
    """Load and validate; raises ConfigError (never a traceback-worthy exception) on any fault."""
    filename = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            filename, [Problem(None, (), f"cannot read file: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(filename, [Problem(line, (), "the file is not UTF-8 text")]) from None
    return parse_config(text, filename, os.environ if environ is None else environ)


def parse_config(text: str, filename: str, environ: Mapping[str, str]) -> VigilConfig:
    try:
        tree = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        problem = str(exc.problem or exc)
        if isinstance(exc, DuplicateKeyError):  # its message quotes both values: keep the key
            problem = problem.split(" with value ")[0]
        message = f"YAML syntax error: {problem}"
        start = exc.context_mark
        if exc.context and start is not None and start.line + 1 != line:
            message += f" ({exc.context} that starts on line {start.line + 1})"
        raise ConfigError(filename, [Problem(line, (), message)]) from None
    except YAMLError as exc:
        raise ConfigError(filename, [Problem(None, (), f"YAML error: {exc}")]) from None
    if not isinstance(tree, CommentedMap):
        raise ConfigError(filename, [Problem(1, (), "the file must be a mapping of settings")])

    problems: list[Problem] = []
    secrets: set[str] = set()
    data = _substitute(tree, (), environ, tree, problems, secrets)
    try:
        config = VigilConfig.model_validate(data)
    except ValidationError as exc:
        unset = {p.path for p in problems}  # so far only unset variables; don't report twice
        for error in exc.errors(include_input=False, include_url=False):
            loc = tuple(p for p in error["loc"] if not _is_internal(p))
            loc += tuple((error.get("ctx") or {}).get("at", ()))
            if loc in unset:
                continue
            problems.append(Problem(line_of(tree, loc), loc, _message(error)))
        raise ConfigError(filename, _masked(problems, secrets)) from None
    problems.extend(_cross_references(config, tree))
    if problems:
        raise ConfigError(filename, _masked(problems, secrets))
    return config


def _masked(problems: list[Problem], secrets: set[str]) -> list[Problem]:
    """Messages may quote a value (`not a duration: '...'`); values from the environment
    (and the password of a URL among them) are replaced by `***` wherever they appear."""
    found: set[str] = set()
    for value in secrets:
        found |= {value, repr(value)[1:-1]}
        try:
            password = urlsplit(value).password
        except ValueError:
            password = None
        if password:
            found.add(password)
    ordered = sorted((s for s in found if len(s) >= 4), key=len, reverse=True)
    masked = []
    for problem in problems:
        message = problem.message
        for secret in ordered:
            message = message.replace(secret, "***")
        masked.append(replace(problem, message=message))
    return masked


def _is_internal(part: Any) -> bool:
    """Pydantic puts union branch names (`list[str]`, `literal['all']`) into locations."""
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _message(error: Any) -> str:
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown key (check the spelling; see examples/ for every key)"
    if error["type"] == "missing":
        return "required key is missing"
    return message.removeprefix("Value error, ")


def _substitute(
    node: Any,
    path: tuple[PathPart, ...],
    environ: Mapping[str, str],
    tree: CommentedMap,
    problems: list[Problem],
    secrets: set[str],
) -> Any:
    """Replace `${NAME}` from `environ`; every substituted value is added to `secrets`."""
    if isinstance(node, CommentedMap):
        return {
            k: _substitute(v, (*path, k), environ, tree, problems, secrets) for k, v in node.items()
        }
    if isinstance(node, CommentedSeq):
        return [
            _substitute(v, (*path, i), environ, tree, problems, secrets) for i, v in enumerate(node)
        ]
    if isinstance(node, str) and _ENV.search(node):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                problems.append(
                    Problem(line_of(tree, path), path, f"environment variable {name} is not set")
                )
                return ""
            secrets.add(environ[name])
            return environ[name]

        value = _ENV.sub(replace, node)
        secrets.add(value)
        return value
    return node


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


def _unknown_metric(metric: str, known: Iterable[str]) -> str:
    """Suggest the closest names for a typo; list them all only when nothing is close."""
    names = sorted(known)
    close = [n for n in names if n.rsplit(".", 1)[-1] == metric]  # `psi` for `drift.psi`
    close = close or difflib.get_close_matches(metric, names, n=3, cutoff=0.75)
    if close:
        return f"unknown metric {metric!r}; did you mean {' or '.join(map(repr, close))}?"
    return f"unknown metric {metric!r}; `vigil metrics` lists the {len(names)} known ones"


def _cross_references(config: VigilConfig, tree: CommentedMap) -> Iterator[Problem]:
    """Names that must point at something defined elsewhere in the file."""
    known_metrics = metric_names()
    for name, model in config.models.items():
        if model.source not in config.sources:
            path: tuple[PathPart, ...] = ("models", name, "source")
            yield Problem(line_of(tree, path), path, f"no source named {model.source!r}")
        for i, slo in enumerate(model.slos):
            if slo.metric not in known_metrics:
                path = ("models", name, "slos", i, "metric")
                yield Problem(line_of(tree, path), path, _unknown_metric(slo.metric, known_metrics))
            needs_labels = slo.metric in known_metrics and metric_info(slo.metric).needs_labels
            if needs_labels and model.labels is None:
                path = ("models", name, "slos", i, "metric")
                yield Problem(
                    line_of(tree, path), path, "a quality metric needs 'labels' on the model"
                )
    references: list[tuple[tuple[PathPart, ...], str]] = [
        (("routing", "default", j), r) for j, r in enumerate(config.routing.default)
    ]
    pending: list[tuple[tuple[PathPart, ...], Any]] = [
        (("routing", "routes", i), route) for i, route in enumerate(config.routing.routes)
    ]
    while pending:  # the route tree, breadth first
        prefix, route = pending.pop(0)
        references += [((*prefix, "receivers", j), r) for j, r in enumerate(route.receivers)]
        pending += [((*prefix, "routes", k), child) for k, child in enumerate(route.routes)]
    for path, receiver in references:
        if receiver not in config.receivers:
            yield Problem(line_of(tree, path), path, f"no receiver named {receiver!r}")
