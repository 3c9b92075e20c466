"""Reads one YAML file into a `VigilConfig`, reporting every problem with its line and field.

Values from the environment (`${NAME}`) are substituted before validation and never echoed
back: problems name the field, not the value, so a secret cannot leak through an error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from monitor.config.models import VigilConfig
from monitor.config.problems import ConfigError, PathPart, Problem, line_of
from monitor.config.semantics import semantic_problems
from monitor.core.redact import MIN_SECRET, mask, url_password

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
__all__ = ["ConfigError", "Problem", "load_config", "parse_config"]


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
    problems.extend(semantic_problems(config, tree, {p.path for p in problems}))
    if problems:
        raise ConfigError(filename, _masked(problems, secrets))
    return config


def _masked(problems: list[Problem], secrets: set[str]) -> list[Problem]:
    """Messages may quote a value (`not a duration: '...'`); values from the environment
    (and the password of a URL among them) are replaced by `***` wherever they appear."""
    found: set[str] = set()
    for value in secrets:
        found |= {value, repr(value)[1:-1]}
        password = url_password(value)
        if password:
            found.add(password)
    found = {s for s in found if len(s) >= MIN_SECRET}
    return [replace(p, message=mask(p.message, found)) for p in problems]


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
