"""Checks that need more than one field, or knowledge outside the config: names that must point
at something defined elsewhere, metrics that fit the model's task, objectives in the metric's
unit and range, and database URLs whose driver is installed.

Each of these would otherwise pass `vigil config check` and fail (or worse, never fire) in
production: ROC AUC of a multiclass model, `< 0.3` read as 0.3 seconds of prediction age, an
accuracy objective of 1.5 that can never be met, a store URL no driver understands.
"""

from __future__ import annotations

import difflib
import importlib.util
import math
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from ruamel.yaml.comments import CommentedMap
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from detectors.base import MetricInfo
from detectors.reference_values import relative_problem
from detectors.registry import metric_info, metric_names
from monitor.config.horizons import retention_problems
from monitor.config.models import ModelConfig, SLOConfig, VigilConfig
from monitor.config.problems import PathPart, Problem, line_of

URL_EXAMPLE = "e.g. sqlite:///vigil.db or postgresql+psycopg://user@host/db"
MULTICLASS_BOUNDS = {("brier", "multiclass_classification"): (0.0, 2.0)}
"""A multiclass Brier score sums the squared errors over classes: it runs from 0 to 2."""
PSEUDO = ("@score", "@prediction")
"""Drift of the model's output, named as features (`monitor.engine.tick.wanted_feature`)."""


def semantic_problems(
    config: VigilConfig, tree: CommentedMap, skip: set[tuple[PathPart, ...]]
) -> Iterator[Problem]:
    """Every problem found once the file's shape is valid; `skip` holds fields already
    reported (an unset environment variable) so they are not reported twice."""

    def at(path: tuple[PathPart, ...], message: str) -> Problem:
        return Problem(line_of(tree, path), path, message)

    urls: list[tuple[tuple[PathPart, ...], str]] = [(("store",), config.store.get_secret_value())]
    urls += [(("sources", n, "url"), s.url.get_secret_value()) for n, s in config.sources.items()]
    for path, url in urls:
        problem = url_problem(url)
        if problem and path not in skip:
            yield at(path, problem)
    for name, model in config.models.items():
        if model.source not in config.sources:
            yield at(("models", name, "source"), f"no source named {model.source!r}")
        for i, slo in enumerate(model.slos):
            for field, message in slo_problems(model, slo):
                yield at(("models", name, "slos", i, *field), message)
    for setting, problem in retention_problems(config):
        yield at(("retention", setting), problem)
    for path, receiver in _receiver_references(config):
        if receiver not in config.receivers:
            yield at(path, f"no receiver named {receiver!r}")


def url_problem(url: str) -> str | None:
    """Whether SQLAlchemy can use `url`: it parses, names a known dialect, and the dialect's
    driver imports. Nothing connects. Messages name the dialect, never the URL (a password).
    A `spark:<master>` source (`monitor.ingest.registry`) needs PySpark instead."""
    if url.split(":", 1)[0].lower() == "spark":
        if importlib.util.find_spec("pyspark") is None:
            return "a spark: source needs PySpark: install the 'spark' extra"
        return None
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return f"not a database URL ({URL_EXAMPLE})"
    try:
        dialect: Any = parsed.get_dialect()
    except NoSuchModuleError:
        return f"no database dialect {parsed.drivername!r} ({URL_EXAMPLE})"
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        return (
            f"the driver for {parsed.drivername!r} is not installed "
            f"(module {exc.name or 'unknown'!r}); install it or pick another driver"
        )
    return None


def slo_problems(model: ModelConfig, slo: SLOConfig) -> Iterator[tuple[tuple[PathPart, ...], str]]:
    """(field path inside the SLO, message) for one SLO: the metric exists and fits the
    model, its features and segment are ones the model logs, and the objective is in the
    metric's unit and inside its range."""
    known = metric_names()
    if slo.metric not in known:
        yield ("metric",), unknown_metric(slo.metric, known)
        return
    info = metric_info(slo.metric)
    if model.task not in info.tasks:
        fits = " or ".join(sorted(info.tasks))
        yield ("metric",), f"{slo.metric} does not apply to a {model.task} model (only {fits})"
        return
    if info.needs_labels and model.labels is None:
        yield ("metric",), "a quality metric needs 'labels' on the model"
    if info.needs_score and model.task == "multiclass_classification":
        if not model.predictions.scores:
            yield (
                ("metric",),
                (
                    f"{slo.metric} on a multiclass model needs a score per class: add "
                    "'scores:' to 'predictions', e.g. scores: {cat: p_cat, dog: p_dog}"
                ),
            )
    elif info.needs_score and model.predictions.score is None:
        yield ("metric",), f"{slo.metric} needs the model's scores: set 'score' in 'predictions'"
    if isinstance(slo.features, list) and info.family in ("drift", "data_quality"):
        logged = {*model.predictions.features, *model.predictions.categorical, *PSEUDO}
        for j, feature in enumerate(slo.features):
            if feature not in logged:
                yield (
                    ("features", j),
                    (
                        f"no feature {feature!r} in 'predictions.features' "
                        f"(nor {' or '.join(PSEUDO)}): this SLO would never be judged"
                    ),
                )
    if slo.segment_by is not None and slo.segment_by not in model.predictions.segments:
        yield (
            ("segment_by",),
            (
                f"{slo.segment_by!r} is not one of 'predictions.segments': "
                "its slices are never summarised"
            ),
        )
    yield from ((("objective",), m) for m in objective_problems(info, slo, model.task))


def objective_problems(info: MetricInfo, slo: SLOConfig, task: str = "") -> Iterator[str]:
    objective = slo.objective
    if objective.relative:
        # Its threshold comes from the reference at each evaluation; the reference must
        # be able to give the metric a value.
        problem = relative_problem(info.name, task)
        if problem:
            yield problem
        return
    if info.unit == "s" and not objective.duration:
        yield (
            f"{info.name} is a duration: give the objective a unit, e.g. "
            f"'{objective.op} {_number(objective.threshold)}s' or '{objective.op} 15m'"
        )
        return
    if info.unit != "s" and objective.duration:
        yield f"{info.name} is not a duration: write a plain number, e.g. '{_example(info)}'"
        return
    low, high = info.bounds
    if (info.name, task) in MULTICLASS_BOUNDS:
        low, high = MULTICLASS_BOUNDS[(info.name, task)]
        info = replace(info, bounds=(low, high))
    value = objective.threshold
    shown = f"{_number(value)}s" if objective.duration else _number(value)
    if not low <= value <= high:
        yield f"{shown} is outside the range of {info.name} ({_range(info.bounds)})"
    elif (objective.op == ">" and value == high) or (objective.op == "<" and value == low):
        yield f"'{objective}' can never be met: {info.name} is {_range(info.bounds)}"
    elif (objective.op == ">=" and value == low) or (objective.op == "<=" and value == high):
        yield f"'{objective}' can never be breached: {info.name} is {_range(info.bounds)}"


def _number(value: float) -> str:
    return f"{value:g}"


def _range(bounds: tuple[float, float]) -> str:
    low, high = bounds
    if math.isinf(low) and math.isinf(high):
        return "any number"
    if math.isinf(high):
        return f"{_number(low)} or more"
    if math.isinf(low):
        return f"at most {_number(high)}"
    return f"between {_number(low)} and {_number(high)}"


def _example(info: MetricInfo) -> str:
    low, high = info.bounds
    if (low, high) == (0.0, 1.0):
        return "<= 0.1" if info.family in ("drift", "data_quality") else ">= 0.85"
    return "< 0.2"


def unknown_metric(metric: str, known: Iterable[str]) -> str:
    """Suggest the closest names for a typo; list them all only when nothing is close."""
    names = sorted(known)
    close = [n for n in names if n.rsplit(".", 1)[-1] == metric]  # `psi` for `drift.psi`
    close = close or difflib.get_close_matches(metric, names, n=3, cutoff=0.75)
    if close:
        return f"unknown metric {metric!r}; did you mean {' or '.join(map(repr, close))}?"
    return f"unknown metric {metric!r}; `vigil metrics` lists the {len(names)} known ones"


def _receiver_references(config: VigilConfig) -> list[tuple[tuple[PathPart, ...], str]]:
    """Every receiver name used by the route tree, with its path."""
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
    return references
