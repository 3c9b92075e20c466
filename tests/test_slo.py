"""The SLO engine: judging one value against its objective, naming SLOs, and keeping their state.

`judge` is pure and tested directly. `record` writes the SLI's state and history, so its tests
run against a real store on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.config.models import SLOConfig
from monitor.core.objectives import parse_objective
from monitor.core.values import BREACH, INSUFFICIENT, OK, UNCERTAIN, MetricValue
from monitor.engine.judging import judge
from monitor.store.db import make_engine, session_factory, upgrade
from monitor.store.slis import record, slo_id
from monitor.store.tables import SLOEvaluation, SLOState

T0 = datetime(2026, 10, 5, 12, tzinfo=UTC)
AT_LEAST = parse_objective(">= 0.85")
BELOW = parse_objective("< 0.2")


def value(
    v: float | None,
    n: int = 1000,
    ci: tuple[float, float] | None = None,
    feature: str | None = None,
) -> MetricValue:
    return MetricValue("accuracy", v, n, "1d", feature=feature, ci=ci)


def slo(**fields: Any) -> SLOConfig:
    data: dict[str, Any] = {"metric": "accuracy", "objective": ">= 0.85", "window": "24h"}
    data.update(fields)
    return SLOConfig.model_validate(data)


# -- judge -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("objective", "metric", "expected"),
    [
        # higher is better (>= 0.85)
        (AT_LEAST, value(0.90, ci=(0.80, 0.95)), OK),
        (AT_LEAST, value(0.86, ci=(0.70, 0.99)), OK),
        (AT_LEAST, value(0.85, ci=(0.83, 0.87)), OK),
        (AT_LEAST, value(0.80, ci=(0.75, 0.84)), BREACH),
        (AT_LEAST, value(0.80, ci=(0.75, 0.90)), UNCERTAIN),
        (AT_LEAST, value(0.80, ci=(0.75, 0.85)), UNCERTAIN),
        (AT_LEAST, value(0.80), BREACH),
        (AT_LEAST, value(0.90), OK),
        # lower is better (< 0.2)
        (BELOW, value(0.10, ci=(0.05, 0.25)), OK),
        (BELOW, value(0.30, ci=(0.25, 0.35)), BREACH),
        (BELOW, value(0.30, ci=(0.20, 0.35)), BREACH),
        (BELOW, value(0.30, ci=(0.15, 0.35)), UNCERTAIN),
        (BELOW, value(0.20), BREACH),
        (BELOW, value(0.19), OK),
    ],
    ids=lambda p: str(p) if isinstance(p, str) else None,
)
def test_judge_uses_the_point_for_ok_and_the_whole_interval_for_breach(
    objective: Any, metric: MetricValue, expected: str
) -> None:
    """OK when the point estimate meets the objective; BREACH only when even the end of the
    interval nearest to good misses it (or there is no interval); UNCERTAIN in between.
    For `< x` objectives the interval's lower end is the one nearest to good."""
    assert judge(objective, metric, min_samples=30, sample_gated=True) == expected


def test_judge_below_min_samples_is_insufficient_even_when_clearly_bad() -> None:
    """Too few samples must not page: a terrible value on 29 rows is insufficient_data."""
    bad = value(0.1, n=29, ci=(0.01, 0.3))
    assert judge(AT_LEAST, bad, min_samples=30, sample_gated=True) == INSUFFICIENT
    good = value(0.99, n=29, ci=(0.9, 1.0))
    assert judge(AT_LEAST, good, min_samples=30, sample_gated=True) == INSUFFICIENT


def test_judge_at_exactly_min_samples_is_judged() -> None:
    """`min_samples` is inclusive: n == min_samples is enough to judge."""
    assert judge(AT_LEAST, value(0.1, n=30, ci=(0.01, 0.3)), 30, True) == BREACH
    assert judge(AT_LEAST, value(0.9, n=30, ci=(0.8, 0.95)), 30, True) == OK


def test_judge_ignores_min_samples_when_not_sample_gated() -> None:
    """A freshness age is one exact observation: with sample_gated False, n does not matter."""
    age = parse_objective("< 15m")
    stale = MetricValue("freshness.prediction_age", 3600.0, 0, "1d")
    fresh = MetricValue("freshness.prediction_age", 60.0, 1, "1d")
    assert judge(age, stale, min_samples=30, sample_gated=False) == BREACH
    assert judge(age, fresh, min_samples=30, sample_gated=False) == OK
    # The same values, sample-gated, would not be judged at all.
    assert judge(age, stale, min_samples=30, sample_gated=True) == INSUFFICIENT


def test_judge_without_a_value_is_insufficient() -> None:
    """No value (an empty window) is insufficient_data, gated or not, never a breach."""
    assert judge(AT_LEAST, value(None, n=0), 30, True) == INSUFFICIENT
    assert judge(AT_LEAST, value(None, n=10_000), 30, False) == INSUFFICIENT
    assert judge(BELOW, value(None, n=10_000), 1, True) == INSUFFICIENT


def test_judge_duration_objectives_compare_seconds() -> None:
    """`< 15m` is 900 seconds: 899 s is ok, 900 s is a breach."""
    age = parse_objective("< 15m")
    assert judge(age, MetricValue("f", 899.0, 1, "1d"), 1, False) == OK
    assert judge(age, MetricValue("f", 900.0, 1, "1d"), 1, False) == BREACH


# -- slo_id ------------------------------------------------------------------------------------


def test_slo_id_is_metric_objective_and_window() -> None:
    """Without a name the id is `<metric><objective without spaces>@<window>`.

    The id is stored (SLO states, incidents) and hashed into every dedup key, so this literal
    is pinned on purpose: if it has to change, stored ids need a migration, or an upgrade
    orphans every open incident and pages again for each ongoing breach."""
    assert slo_id(slo()) == "accuracy>=0.85@24h"
    assert slo_id(slo(metric="drift.psi", objective="< 0.2", window="6h")) == "drift.psi<0.2@6h"
    # A window is named by its duration, not its spelling: `7d` and `1w` are one SLO.
    assert slo_id(slo(window="7d")) == slo_id(slo(window="1w")) == "accuracy>=0.85@7d"


def test_slo_id_is_stable() -> None:
    """The same SLO always gets the same id, however its objective is spaced, and settings
    that do not change what is measured (severity, for, min_samples) do not change it, so an
    open incident is still found after such an edit."""
    base = slo_id(slo())
    assert slo_id(slo()) == base
    assert slo_id(slo(objective=">=0.85")) == base
    assert slo_id(slo(objective="  >=   0.85 ")) == base
    assert slo_id(slo(window="1d")) == base
    assert slo_id(slo(severity="page", min_samples=5, resolve_after=4, **{"for": "1h"})) == base


def test_slo_id_differs_when_what_is_measured_differs() -> None:
    base = slo_id(slo())
    assert slo_id(slo(window="7d")) != base
    assert slo_id(slo(objective=">= 0.9")) != base
    assert slo_id(slo(objective="> 0.85")) != base
    assert slo_id(slo(metric="drift.psi")) != base


def test_slo_id_prefers_the_configured_name() -> None:
    assert slo_id(slo(name="fraud-accuracy")) == "fraud-accuracy"
    assert slo_id(slo(name="fraud-accuracy", window="7d")) == "fraud-accuracy"


# -- record ------------------------------------------------------------------------------------


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


def _record(
    sessions: sessionmaker[Session], status: str, now: datetime, **kw: Any
) -> tuple[datetime, int]:
    with sessions.begin() as session:
        verdict = record(session, "m", slo(), value(0.5, **kw), status, now)
        return verdict.since, verdict.streak


def _state(sessions: sessionmaker[Session], feature: str = "") -> SLOState:
    with sessions() as session:
        state = session.get(SLOState, ("m", slo_id(slo()), feature))
        assert state is not None
        return state


def test_record_keeps_since_while_status_holds(sessions: sessionmaker[Session]) -> None:
    """While the status is unchanged, `since` stays at the first evaluation and the streak
    counts the evaluations; both are persisted, not only returned."""
    hour = timedelta(hours=1)
    assert _record(sessions, BREACH, T0) == (T0, 1)
    assert _record(sessions, BREACH, T0 + hour) == (T0, 2)
    assert _record(sessions, BREACH, T0 + 2 * hour) == (T0, 3)
    state = _state(sessions)
    assert (state.status, state.since, state.streak) == (BREACH, T0, 3)
    assert state.evaluated_at == T0 + 2 * hour


def test_record_resets_since_and_streak_on_change(sessions: sessionmaker[Session]) -> None:
    """A new status starts a new run: `since` becomes now and the streak starts again at 1."""
    hour = timedelta(hours=1)
    _record(sessions, BREACH, T0)
    _record(sessions, BREACH, T0 + hour)
    assert _record(sessions, OK, T0 + 2 * hour) == (T0 + 2 * hour, 1)
    assert _record(sessions, OK, T0 + 3 * hour) == (T0 + 2 * hour, 2)
    assert _record(sessions, UNCERTAIN, T0 + 4 * hour) == (T0 + 4 * hour, 1)
    assert _record(sessions, BREACH, T0 + 5 * hour) == (T0 + 5 * hour, 1)
    state = _state(sessions)
    assert (state.status, state.since, state.streak) == (BREACH, T0 + 5 * hour, 1)


def test_record_appends_history_and_latest_value(sessions: sessionmaker[Session]) -> None:
    """Every evaluation is kept in the history; the state holds the latest value, n and CI."""
    _record(sessions, OK, T0, n=100, ci=(0.4, 0.6))
    _record(sessions, BREACH, T0 + timedelta(hours=1), n=200, ci=(0.45, 0.55))
    with sessions() as session:
        rows = session.execute(
            select(SLOEvaluation.at, SLOEvaluation.status, SLOEvaluation.n).order_by(
                SLOEvaluation.at
            )
        ).all()
    assert [tuple(r) for r in rows] == [(T0, OK, 100), (T0 + timedelta(hours=1), BREACH, 200)]
    state = _state(sessions)
    assert (state.value, state.n, state.ci_low, state.ci_high) == (0.5, 200, 0.45, 0.55)


def test_record_keeps_one_state_per_feature(sessions: sessionmaker[Session]) -> None:
    """Per-feature SLIs (drift) have independent states: one feature's change does not reset
    another's run."""
    hour = timedelta(hours=1)
    _record(sessions, BREACH, T0, feature="amount")
    _record(sessions, BREACH, T0, feature="country")
    _record(sessions, OK, T0 + hour, feature="amount")
    _record(sessions, BREACH, T0 + hour, feature="country")
    amount, country = _state(sessions, "amount"), _state(sessions, "country")
    assert (amount.status, amount.since, amount.streak) == (OK, T0 + hour, 1)
    assert (country.status, country.since, country.streak) == (BREACH, T0, 2)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(SLOState)) == 2
