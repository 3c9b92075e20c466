"""Objectives relative to the reference: parsing, the reference's value of a metric and its
standard deviation at a window's size (checked against sklearn and by simulation), and the
engine judging against the resolved threshold, which the verdict shows."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from detectors.base import DetectorSettings
from detectors.reference_values import reference_value, sd_at, sd_from_reference
from detectors.registry import METRICS
from monitor.core.objectives import parse_objective, resolve
from monitor.core.values import BREACH, INSUFFICIENT, OK, MetricValue
from monitor.engine.runtime import open_runtime
from monitor.engine.tick import TickResult, apply_value
from tests.builders import T0, build_config, config_dict
from tests.test_quality_metrics import BINARY, make_rows, reference_for


def test_relative_objectives_parse_and_resolve() -> None:
    """`reference - d`, `reference * k`, `reference + d`, plain `reference` and `auto` parse;
    resolving applies the arithmetic and says how; the text (the SLO's id) stays as written;
    a malformed one names the accepted forms."""
    minus = parse_objective(">= reference - 0.01")
    assert minus.relative and math.isnan(minus.threshold) and minus.text == ">= reference - 0.01"
    resolved = resolve(minus, 0.97, None, True)
    assert resolved is not None and resolved.threshold == pytest.approx(0.96)
    assert resolved.text == minus.text and "0.97" in resolved.derived
    times = resolve(parse_objective("<= reference * 1.5"), 0.2, None, False)
    assert times is not None and times.threshold == pytest.approx(0.3) and times.op == "<="
    plus = resolve(parse_objective("<reference+2"), 1.0, None, False)
    assert plus is not None and plus.threshold == 3.0
    same = resolve(parse_objective(">= reference"), 0.5, None, True)
    assert same is not None and same.threshold == 0.5
    auto = parse_objective("auto")
    assert resolve(auto, 0.9, None, True) is None
    up = resolve(auto, 0.9, 0.01, True)
    down = resolve(auto, 0.3, 0.01, False)
    assert up is not None and (up.op, up.threshold) == (">=", pytest.approx(0.87))
    assert down is not None and (down.op, down.threshold) == ("<=", pytest.approx(0.33))
    assert resolve(minus, None, None, True) is None
    assert not parse_objective(">= 0.85").relative
    with pytest.raises(ValueError, match=r"reference - 0\.01"):
        parse_objective(">= baseline - 0.01")


def _reference(seed: int, n: int = 20_000) -> tuple[Any, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    score = rng.beta(2, 3, n)
    label = (rng.uniform(size=n) < score).astype(float)
    return reference_for(make_rows(rng, n, score=score, label=label), BINARY), score, label


def test_reference_values_match_sklearn_on_the_reference_rows() -> None:
    """Accuracy on the reference equals sklearn's at threshold 0.5 (exactly: the confusion
    counts come from the score bins, and 0.5 is a bin edge); ROC AUC is within the bins'
    tie error (0.002) of sklearn's on the raw scores."""
    reference, score, label = _reference(1)
    settings = DetectorSettings()
    acc = reference_value("accuracy", METRICS["accuracy"][1], reference, settings)
    auc = reference_value("roc_auc", METRICS["roc_auc"][1], reference, settings)
    assert acc is not None and auc is not None
    assert acc.value == pytest.approx(skm.accuracy_score(label, score >= 0.5), abs=1e-12)
    assert auc.value == pytest.approx(skm.roc_auc_score(label, score), abs=0.002)


def test_auto_is_quiet_when_the_window_holds_more_rows_than_the_reference() -> None:
    """The population does not change, but the reference (2,000 rows) and each window (20,000
    rows) are both samples of it. Over 300 seeded pairs, `auto` (3 standard deviations of the
    window's value less the reference's) flags at most 2% of windows (normal theory: 0.13%);
    3 standard deviations of the window alone (`sd_at`, the threshold before) flag far more
    (theory: the margin is 0.95 of the difference's sd, 17%), so this test can tell them
    apart. Found by the detection benchmark: a quiet year at 1,000 rows a day, 30-day
    windows against a 20,000-row reference, paged `estimated.roc_auc` for 26 days."""
    auto = parse_objective("auto")
    detector = METRICS["accuracy"][1]
    flagged = {"both": 0, "window only": 0}
    pairs = 300
    for seed in range(pairs):
        reference, _, _ = _reference(100 + seed, n=2_000)
        acc = reference_value("accuracy", detector, reference, DetectorSettings())
        assert acc is not None
        rng = np.random.default_rng(10_000 + seed)
        score = rng.beta(2, 3, 20_000)
        label = rng.uniform(size=score.size) < score
        window = float(np.mean((score >= 0.5) == label))
        for kind, sd in (
            ("both", sd_from_reference(acc, 20_000)),
            ("window only", sd_at(acc, 20_000)),
        ):
            resolved = resolve(auto, acc.value, sd, True)
            assert resolved is not None
            flagged[kind] += not resolved.is_good(window)
    assert flagged["both"] <= 0.02 * pairs, flagged
    assert flagged["window only"] >= 0.08 * pairs, flagged


def test_sd_at_n_matches_the_spread_of_windows_drawn_from_the_reference() -> None:
    """The accuracy's standard deviation over windows of 500 rows, predicted from the
    reference (its interval scaled by sqrt(n_ref / 500)), is within 15% of the standard
    deviation of sklearn's accuracy on 400 windows of 500 rows resampled from the reference."""
    reference, score, label = _reference(2)
    acc = reference_value("accuracy", METRICS["accuracy"][1], reference, DetectorSettings())
    assert acc is not None
    predicted = sd_at(acc, 500)
    rng = np.random.default_rng(3)
    observed = []
    for _ in range(400):
        pick = rng.integers(0, score.size, 500)
        observed.append(skm.accuracy_score(label[pick], score[pick] >= 0.5))
    assert predicted == pytest.approx(float(np.std(observed, ddof=1)), rel=0.15)


@pytest.fixture
def engine(db_url: str, tmp_path: Path) -> Iterator[Any]:
    slos = [
        {"metric": "accuracy", "objective": ">= reference - 0.01", "window": "24h"},
        {"metric": "accuracy", "objective": "auto", "window": "24h"},
    ]
    config = build_config(config_dict(db_url, f"sqlite:///{tmp_path / 'src.db'}", slos=slos))
    rt = open_runtime(config, tmp_path)
    yield config, rt
    rt.close()


def test_engine_judges_against_the_resolved_threshold(engine: Any) -> None:
    """On SQLite and PostgreSQL: with a reference accuracy of 0.80 (n = 10 000), a value of
    0.785 on 2 000 rows is not ok against `>= reference - 0.01` (threshold 0.79; its interval
    reaches above, so it is uncertain) while `auto` (0.80 - 3 x the sd of a 2 000-row window
    less the 10 000-row reference, about 0.771) is ok; 0.76 breaches both. The verdict shows
    the threshold and how it was derived; a relative objective without a reference value is
    insufficient data."""
    config, rt = engine
    relative, auto = config.models["m"].slos
    ref = MetricValue("accuracy", 0.80, 10_000, "reference", ci=(0.7921, 0.8078))
    sd = (0.8078 - 0.7921) / (2 * 1.959963984540054) * math.sqrt(10_000 / 2000 + 1)

    def feed(slo: Any, v: float, reference: MetricValue | None, hour: int) -> Any:
        value = MetricValue("accuracy", v, 2000, "24h", ci=(v - 0.018, v + 0.018))
        now = T0 + timedelta(hours=hour)
        with rt.sessions.begin() as session:
            return apply_value(
                session, config, "m", slo, value, now, TickResult("m", now), reference=reference
            )

    first = feed(relative, 0.785, ref, 0)
    assert first.threshold == pytest.approx(0.79) and first.status != OK
    assert "reference 0.8 - 0.01" in first.derived
    ok = feed(auto, 0.785, ref, 0)
    assert ok.status == OK and ok.threshold == pytest.approx(0.80 - 3 * sd)
    assert ok.derived.startswith("auto")
    bad = feed(auto, 0.76, ref, 1)
    assert (bad.status, bad.rule) == (BREACH, "point")
    assert feed(relative, 0.76, ref, 1).status == BREACH
    missing = feed(relative, 0.76, None, 2)
    assert (missing.status, missing.rule) == (INSUFFICIENT, "reference")


def _write_config(tmp_path: Path, slos: list[dict[str, Any]], task: str | None = None) -> Path:
    import yaml

    data = config_dict(
        f"sqlite:///{tmp_path / 'v.db'}", f"sqlite:///{tmp_path / 's.db'}", slos=slos
    )
    if task:
        data["models"]["m"]["task"] = task
    path = tmp_path / "vigil.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_config_check_explains_relative_objectives_and_refuses_impossible_ones(
    tmp_path: Path,
) -> None:
    """`vigil config check` prints how each relative objective's threshold is derived, and
    exits 2 naming the objective's line and field when the reference cannot give the metric a
    value (a freshness
    metric, or a regression model); `vigil metrics --json` marks which metrics accept them."""
    import json

    from tests.test_config import vigil

    slos = [
        {"metric": "estimated.roc_auc", "objective": "auto", "window": "24h"},
        {"metric": "accuracy", "objective": ">= reference - 0.01", "window": "24h"},
    ]
    good = vigil("config", "check", _write_config(tmp_path, slos))
    assert good.returncode == 0, good.stderr
    assert (
        "slos[0] (estimated.roc_auc auto): threshold = the metric on the reference" in good.stdout
    )
    assert "slos[1] (accuracy >= reference - 0.01): threshold = reference - 0.01" in good.stdout
    bad = [{"metric": "freshness.prediction_age", "objective": "auto", "window": "1h"}]
    refused = vigil("config", "check", _write_config(tmp_path, bad))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "slos.0.objective: the reference has no value of freshness" in refused.stderr
    listed = {row["metric"]: row for row in json.loads(vigil("metrics", "--json").stdout)}
    assert listed["estimated.roc_auc"]["relative_objectives"] is True
    assert listed["log_loss"]["higher_is_better"] is False
    assert listed["freshness.prediction_age"]["relative_objectives"] is False
