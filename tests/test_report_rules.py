"""The weekly report says what an objective relative to the reference resolved to, which rule
failed each check, and which reference version applied when (issue 13).

The store is written by hand (evaluations with their thresholds and rules, two reference
versions), on SQLite and PostgreSQL, so every expected word and number is known exactly.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.config.models import SLOConfig
from monitor.core.reference import ReferenceSummary
from monitor.engine.runtime import Runtime, open_runtime
from monitor.report.charts import sli_chart
from monitor.report.data import build_report
from monitor.report.names import objective_words, slo_sentence
from monitor.report.weeks import parse_week
from monitor.store.slis import slo_id
from monitor.store.state import VersionNote, save_reference
from monitor.store.tables import SLOEvaluation
from tests.builders import build_config, config_dict

W45 = parse_week("2026-W45", ZoneInfo("UTC"))  # Mon 2 Nov .. Mon 9 Nov 2026
RELATIVE = {"metric": "roc_auc", "window": "24h", "objective": ">= reference - 0.01",
            "target": 0.9, "period": "7d"}  # fmt: skip
AUTO = {"metric": "estimated.roc_auc", "window": "24h", "objective": "auto"}
FIXED = {"metric": "accuracy", "window": "24h", "objective": ">= 0.9"}
REL_ID = slo_id(SLOConfig.model_validate(RELATIVE))
MOVED = W45.start + timedelta(days=3)


@pytest.fixture
def rt(db_url: str, tmp_path: Path) -> Any:
    data = config_dict(db_url, f"sqlite:///{tmp_path / 'src.db'}", slos=[RELATIVE, AUTO, FIXED])
    data["report"] = {"out_dir": str(tmp_path / "reports")}
    runtime = open_runtime(build_config(data), tmp_path)
    start = W45.start
    rows = [  # (hours into the week, status, rule, threshold)
        (1, "ok", "point", 0.951),
        (2, "breach", "interval", 0.952),
        (3, "breach", "sequential", 0.953),
        (4, "breach", "sequential", 0.953),
        (5, "uncertain", "interval", 0.952),
    ]
    with runtime.sessions.begin() as session:
        for hours, status, rule, threshold in rows:
            at = start + timedelta(hours=hours)
            session.add(
                SLOEvaluation(model="m", slo_id=REL_ID, feature="", at=at, status=status,
                              value=0.95, n=500, rule=rule, threshold=threshold)
            )  # fmt: skip
        reference = ReferenceSummary(fingerprint="f", n=1000)
        save_reference(session, "m", reference, start - timedelta(days=30))
    with runtime.sessions.begin() as session:
        moved = VersionNote(origin="period", by="ana", reason="model v2 retrained")
        save_reference(session, "m", reference, MOVED, moved)
    yield runtime
    runtime.close()


def test_a_relative_objective_shows_its_computed_threshold_not_nan(rt: Runtime) -> None:
    relative, auto, fixed = build_report(rt, W45, W45.end).slos
    assert relative.thresholds == (0.951, 0.953)
    assert relative.name == (
        "Ranking quality (ROC AUC) stays at or above the reference − 0.01 "
        "(computed: 0.951–0.953) (24h window)"
    )
    assert "nan" not in auto.name and "auto" in auto.name and "not computed yet" in auto.name
    assert fixed.name == "Accuracy stays at or above 90% (24h window)"
    slo = SLOConfig.model_validate({**RELATIVE, "objective": "<= reference * 1.5"})
    assert objective_words(slo, (0.3, 0.3)) == "at most the reference × 1.5 (computed: 0.3)"
    assert "nan" not in slo_sentence(SLOConfig.model_validate(AUTO))


def test_failed_checks_say_which_rule_decided(rt: Runtime) -> None:
    relative, _, fixed = build_report(rt, W45, W45.end).slos
    assert relative.rules == {"interval": 1, "sequential": 2}
    assert relative.decided_by == "sequential 2, interval 1"
    assert fixed.decided_by == ""


def test_the_report_says_which_reference_applied_when(rt: Runtime) -> None:
    (model,) = build_report(rt, W45, W45.end).models
    assert [(r.version, r.origin, r.applies_from) for r in model.references] == [
        (1, "config", W45.start - timedelta(days=30)),
        (2, "period", MOVED),
    ]
    assert model.references[1].words == "version 2 (moved to a period by ana: model v2 retrained)"
    earlier = build_report(rt, parse_week("2026-W44", ZoneInfo("UTC")), W45.end)
    assert [r.version for r in earlier.models[0].references] == [1]


def test_html_shows_thresholds_rules_and_references(rt: Runtime) -> None:
    from monitor.report.deliver import publish

    html = publish(rt, W45, W45.end, send=False).html.read_text(encoding="utf-8")
    assert "the reference − 0.01 (computed: 0.951–0.953)" in html
    assert "Failed checks decided by" in html and "sequential 2, interval 1" in html
    assert "version 2 (moved to a period by ana: model v2 retrained) from" in html
    relative = build_report(rt, W45, W45.end).slos[0]
    assert sli_chart(relative, W45).startswith("data:image/png;base64,")
