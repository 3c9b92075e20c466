"""A tick reads every SLI's budget history once (`BudgetHistory`) instead of one query per
value: the budgets it gives must be the ones `compute_budget` gives after the verdict's own
evaluation is flushed, on SQLite and PostgreSQL, for every status and window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from monitor.config.models import SLOConfig
from monitor.core.values import BREACH, INSUFFICIENT, OK
from monitor.engine.budgets import BudgetHistory, compute_budget
from monitor.store.db import make_engine, session_factory, upgrade
from monitor.store.slis import slo_id
from monitor.store.tables import SLOEvaluation
from tests.builders import build_config, config_dict

NOW = datetime(2026, 11, 30, 10, 17, tzinfo=UTC)
FEATURES = ["", "amount", "country"]


def _slos() -> list[SLOConfig]:
    raw = config_dict("sqlite://", "sqlite://")
    raw["models"]["m"]["slos"] = [
        {"metric": "accuracy", "window": "24h", "objective": ">= 0.9", "burn_alerts": "default"},
        {"metric": "drift.psi", "window": "24h", "objective": "< 0.2", "period": "7d"},
    ]
    return list(build_config(raw).models["m"].slos)


@pytest.mark.parametrize("status", [OK, BREACH, INSUFFICIENT])
def test_history_budgets_equal_a_query_per_value(db_url: str, status: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    sessions = session_factory(engine)
    slos = _slos()
    rng = np.random.default_rng(3)
    statuses = [OK, BREACH, INSUFFICIENT]
    with sessions.begin() as session:  # 40 days of history, inside and outside every window
        for slo in slos:
            for feature in FEATURES[: 1 + slos.index(slo) * 2]:
                for minutes in rng.integers(1, 40 * 24 * 60, 300):
                    session.add(
                        SLOEvaluation(
                            model="m",
                            slo_id=slo_id(slo),
                            feature=feature,
                            at=NOW - timedelta(minutes=int(minutes)),
                            status=statuses[int(rng.integers(0, 3))],
                            value=0.5,
                            n=10,
                            rule="point",
                        )
                    )
    try:
        with sessions.begin() as session:
            history = BudgetHistory(session, "m", NOW, slos)
            for slo in slos:
                for feature in [*FEATURES, "new-feature"]:
                    got = history.budget(slo_id(slo), feature, slo, status)
                    session.add(
                        SLOEvaluation(
                            model="m",
                            slo_id=slo_id(slo),
                            feature=feature,
                            at=NOW,
                            status=status,
                            value=0.5,
                            n=10,
                            rule="point",
                        )
                    )
                    session.flush()
                    want = compute_budget(session, "m", slo_id(slo), feature, slo, NOW)
                    assert got == want, (slo_id(slo), feature)
            assert want.good + want.bad > 0 or status == INSUFFICIENT
            # an SLO it did not read at the start: the caller queries instead
            other = slos[0].model_copy(update={"name": "unread"})
            assert history.budget("unread", "", other, status) is None
    finally:
        engine.dispose()
