"""Evidence that accumulates: the rules that decide an SLO, the CUSUM's false-alarm rate and
its power, checked by simulation; the deciding rule stored with each evaluation.

The false-alarm rate stated in monitor/sequential.py is Lorden's bound: with the value sitting
*exactly on* the objective, the mean run length to a false alarm is at least W / (1 - c)
blocks. It is checked here on simulated blocks (normal noise of known standard error), as is
the rate on a quiet stream whose value sits at a healthy level.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import select

from monitor.core.objectives import parse_objective
from monitor.core.values import BREACH, OK, UNCERTAIN, MetricValue
from monitor.engine.judging import decide
from monitor.engine.runtime import open_runtime
from monitor.engine.sequential import at_confidence, cusum_step, cusum_threshold, z_for
from monitor.engine.tick import TickResult, apply_value
from monitor.store.tables import SLOEvaluation, SLOState
from tests.builders import T0, build_config, config_dict

AT_LEAST = parse_objective(">= 0.9")
DAY = timedelta(days=1)


def normal_value(value: float, se: float, n: int = 1000) -> MetricValue:
    return MetricValue("accuracy", value, n, "30d", ci=(value - 1.96 * se, value + 1.96 * se))


def run_length(
    rng: np.random.Generator, mean: float, se: float, window: timedelta, cap: int
) -> int:
    """Blocks until the chart crosses its threshold at 0.95 (cap when it never does)."""
    h = cusum_threshold(window, 0.95)
    s = 0.0
    for i, v in enumerate(rng.normal(mean, se, cap), start=1):
        s = cusum_step(s, normal_value(float(v), se), AT_LEAST, window)
        if s >= h:
            return i
    return cap


def test_confidence_rescales_the_interval_with_scipys_normal_quantile() -> None:
    """At 0.8 the interval shrinks by norm.ppf(0.9) / norm.ppf(0.975) around the value, so a
    value uncertain at 0.95 breaches on its interval at 0.8, and 0.99 widens it."""
    v = normal_value(0.89, 0.006)
    assert decide(AT_LEAST, v, 30, True).status == UNCERTAIN
    low, high = at_confidence(0.89, v.ci or (0, 0), 0.8)
    assert high - 0.89 == pytest.approx(1.96 * 0.006 * stats.norm.ppf(0.9) / 1.96, rel=1e-3)
    assert z_for(0.99) == pytest.approx(stats.norm.ppf(0.995))
    assert decide(AT_LEAST, v, 30, True, confidence=0.8) == decide(
        AT_LEAST, v, 30, True, confidence=0.8
    )
    assert decide(AT_LEAST, v, 30, True, confidence=0.8).rule == "interval"
    assert decide(AT_LEAST, v, 30, True, confidence=0.8).status == BREACH
    assert low < 0.89 < high


def test_each_rule_decides_where_it_should() -> None:
    """ok on the point, breach on the interval, on the CUSUM's evidence, on a point estimate
    wrong for a whole window; uncertain otherwise; too few rows is min_samples."""
    window = timedelta(days=30)
    good, unsure = normal_value(0.95, 0.01), normal_value(0.89, 0.01)
    assert decide(AT_LEAST, good, 30, True).rule == "point"
    assert decide(AT_LEAST, normal_value(0.85, 0.01), 30, True).rule == "interval"
    assert decide(AT_LEAST, unsure, 30, True).status == UNCERTAIN
    assert decide(AT_LEAST, unsure, 30, True, evidence=True).rule == "sequential"
    late = decide(AT_LEAST, unsure, 30, True, wrong_for=window, window=window)
    assert (late.status, late.rule) == (BREACH, "point")
    early = decide(AT_LEAST, unsure, 30, True, wrong_for=window - DAY, window=window)
    assert early.status == UNCERTAIN
    few = decide(AT_LEAST, normal_value(0.5, 0.01, n=10), 30, True, evidence=True)
    assert (few.status, few.rule) == ("insufficient_data", "min_samples")
    assert decide(AT_LEAST, good, 30, True, evidence=True).status == OK


@pytest.mark.parametrize("window,blocks", [(DAY, 1), (timedelta(days=7), 7)])
def test_false_alarm_run_length_at_the_objective_meets_lordens_bound(
    window: timedelta, blocks: int
) -> None:
    """Value exactly on the objective: over 300 simulated charts the mean run length to a
    false alarm is at least W / (1 - 0.95) = 20 W blocks (the stated rate), and the chart
    does alarm eventually (it is a test, not a switch that never turns on)."""
    rng = np.random.default_rng(blocks)
    cap = 200 * blocks
    lengths = [run_length(rng, 0.9, 0.02, window, cap) for _ in range(300)]
    assert float(np.mean(lengths)) >= 20 * blocks
    assert min(lengths) < cap


def test_quiet_stream_at_a_healthy_level_has_no_false_alarm_in_a_year() -> None:
    """A 30-day SLO whose daily blocks sit one window standard error on the good side: in
    200 simulated years no chart alarms in more than 1% of the years (≤ 1 false incident per
    SLO-year is the target; this is far below it)."""
    window = timedelta(days=30)
    se_block = 0.02
    healthy = 0.9 + se_block / np.sqrt(30)
    rng = np.random.default_rng(5)
    alarms = sum(run_length(rng, healthy, se_block, window, 365) < 365 for _ in range(200))
    assert alarms <= 2


def test_a_shift_too_small_for_the_interval_breaches_on_accumulated_evidence() -> None:
    """A 24h SLO whose value sits 1.5 standard errors below its objective for good: its
    interval rule (1.96 se) almost never fires on a single window, but the CUSUM crosses
    within 10 daily blocks in at least 90% of 200 seeds."""
    rng = np.random.default_rng(6)
    se = 0.01
    shifted = [run_length(rng, 0.9 - 1.5 * se, se, DAY, 10) < 10 for _ in range(200)]
    assert sum(shifted) >= 180


@pytest.fixture
def runtime(db_url: str, tmp_path: Path) -> Iterator[Any]:
    slos = [{"metric": "accuracy", "objective": ">= 0.9", "window": "24h", "min_samples": 30}]
    config = build_config(config_dict(db_url, f"sqlite:///{tmp_path / 'src.db'}", slos=slos))
    rt = open_runtime(config, tmp_path)
    yield config, rt
    rt.close()


def test_engine_breaches_on_sequential_evidence_and_stores_the_rule(runtime: Any) -> None:
    """Through the engine's own step on SQLite and PostgreSQL: a 24h accuracy SLO whose hourly
    values alternate between 1.5 se under its objective (uncertain on the interval) and just
    above it (so the point rule never holds for a window), with one daily block each day
    1.5 se under (seeded noise), breaches by the `sequential` rule within a week; every
    evaluation stores its rule, and the state keeps the CUSUM past its threshold."""
    config, rt = runtime
    slo = config.models["m"].slos[0]
    rng = np.random.default_rng(7)
    se = 0.01
    rules: list[str] = []
    for hour in range(24 * 7):
        now = T0 + timedelta(hours=hour)
        block_end = T0 + DAY * (hour // 24)
        block = normal_value(float(rng.normal(0.9 - 1.5 * se, se)), se) if hour >= 24 else None
        value = normal_value(0.9 - 1.5 * se if hour % 2 == 0 else 0.901, se)
        with rt.sessions.begin() as session:
            v = apply_value(
                session,
                config,
                "m",
                slo,
                value,
                now,
                TickResult("m", now),
                block,
                block_end if block else None,
            )
        rules.append(v.rule)
        if v.status == BREACH:
            break
    assert rules[-1] == "sequential"
    assert rules[0] == "interval" and rules[1] == "point"
    with rt.sessions() as session:
        stored = list(session.scalars(select(SLOEvaluation.rule).order_by(SLOEvaluation.id)))
        state = session.scalars(select(SLOState)).one()
    assert stored == rules
    assert state.cusum is not None and state.cusum >= cusum_threshold(DAY, 0.95)
