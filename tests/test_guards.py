"""Guards for features whose tests once passed with the feature broken.

Each test here was checked by breaking its feature with a one-line change (named in the
docstring), running the test (it failed), and reverting. Expected values come from scipy,
sklearn or plain arithmetic on the inputs, never from the code under test.
"""

from __future__ import annotations

import math
from datetime import UTC, timedelta
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn.isotonic import IsotonicRegression
from sqlalchemy import select

from alerts.notifiers.pagerduty import PagerDutyNotifier
from alerts.notifiers.registry import FailureReporter, Reporting
from detectors.base import DetectorSettings, WindowContext, WindowSummary
from detectors.estimated import Estimated, isotonic
from detectors.freshness import Freshness
from detectors.intervals import Z_95
from monitor.core.clock import SimulatedClock
from monitor.core.summaries import SCORE_BINS, BucketSummary
from monitor.engine.runtime import open_runtime
from monitor.engine.tick import Windows, compute_values, load_windows, tick, volume_baseline
from monitor.engine.windows import build_window
from monitor.ingest.bucketing import bucket_start
from monitor.store.db import make_engine, session_factory, upgrade
from monitor.store.state import upsert_buckets
from monitor.store.tables import Incident
from tests.builders import (
    T0,
    add_labels,
    add_predictions,
    build_alert,
    build_config,
    build_notification,
    config_dict,
    create_source,
)
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.test_quality_metrics import (
    BINARY,
    MULTICLASS,
    compute,
    make_rows,
    reference_for,
    summarise,
    window_of,
)
from tests.test_quality_metrics import NOW as Q_NOW

HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)
PD_KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12"


# -- the weekly volume baseline -------------------------------------------------------------------


def test_volume_baseline_is_the_same_hour_in_each_past_week(tmp_path: Path) -> None:
    """The baseline holds the counts of the same hour one, two, three and four weeks back, not
    of the previous days nor five weeks back (break: `week = timedelta(days=1)` in
    `volume_baseline`). Every day of the last week has a bucket of its own count at that hour,
    so a daily look-back reads other numbers."""
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    now = T0 + timedelta(days=35, minutes=30)
    last = bucket_start(now, HOUR) - HOUR
    weekly = {last - k * WEEK: BucketSummary(n=100 + k) for k in range(6)}  # 5 weeks back too
    daily = {last - d * timedelta(days=1): BucketSummary(n=900 + d) for d in range(1, 7)}
    with session_factory(engine).begin() as session:
        upsert_buckets(session, "m", {**weekly, **daily}, now)
    with session_factory(engine)() as session:
        last_count, baseline = volume_baseline(session, "m", now, HOUR)
        # An hour later the last complete bucket is empty: its count is 0, not missing.
        empty_count, shifted = volume_baseline(session, "m", now + HOUR, HOUR)
    assert last_count == 100
    assert baseline == (101, 102, 103, 104)
    assert (empty_count, shifted) == (0, ())
    engine.dispose()


# -- label age needs the newest label --------------------------------------------------------------


def test_a_tick_measures_label_age_from_the_newest_label(tmp_path: Path) -> None:
    """After a tick has read labels, the window the engine builds carries the newest label's
    time, and `freshness.label_age` is now minus that time (break: drop `newest_label=` from
    `load_windows` or `build_window`; the age is then None)."""
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    source = create_source(source_url, n_reference=300)
    slos = [{"metric": "freshness.label_age", "objective": "< 6h", "severity": "ticket"}]
    rt = open_runtime(build_config(config_dict(store_url, source_url, slos=slos)), tmp_path)
    try:
        times = [T0 + timedelta(minutes=10 * i) for i in range(30)]
        add_predictions(source, 1, times)
        newest = T0 + timedelta(hours=4, minutes=17)
        add_labels(source, [(1, T0 + HOUR, 1), (2, newest, 0), (3, T0 + 2 * HOUR, 1)])
        now = T0 + timedelta(hours=6)
        result = tick(rt, "m", now)
        [age] = [v for v in result.values if v.metric == "freshness.label_age"]
        assert age.value == pytest.approx((now - newest).total_seconds())
        windows = load_windows(rt, "m", now)
        assert {w.newest_label for w in windows.by_length.values()} == {newest}
    finally:
        rt.close()
        source.dispose()


def test_build_window_passes_the_newest_label_to_freshness() -> None:
    """The same guard one stage down: the window built from buckets and context keeps the
    context's newest label, which is what `Freshness` ages."""
    newest = T0 + timedelta(hours=3)
    now = T0 + timedelta(hours=5)
    context = WindowContext(newest_prediction=now, newest_label=newest)
    window = build_window([(T0, BucketSummary(n=5, n_labelled=3))], now, 24 * HOUR, HOUR, context)
    [age] = [v for v in Freshness().compute(window, None, now) if v.metric.endswith("label_age")]
    assert age.value == pytest.approx(2 * 3600)


# -- the meta-alert resolves -----------------------------------------------------------------------


def test_the_meta_alert_resolves_when_the_receiver_delivers_again(tmp_path: Path) -> None:
    """A receiver that rejects messages for good opens one `monitoring_blind` incident for
    model `vigil`; once it delivers again that incident is resolved, with the reason (break:
    `delivered` returning before `_resolve`, or `_resolve` not resolving)."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(store)
    upgrade(engine)
    sessions = session_factory(engine)
    clock = SimulatedClock(T0)
    with FakePagerDuty() as pd:
        data = config_dict(store, "sqlite://")
        data["routing"] = {"default": ["chat"], "group_wait": "0s", "group_interval": "0s"}
        data["receivers"] = {
            "chat": {"slack": {"channel": "#x", "outfile": str(tmp_path / "s.jsonl")}},
            "pd": {"pagerduty": {"routing_key": PD_KEY, "base_url": pd.base_url}},
        }
        config = build_config(data)
        reporter = FailureReporter(config, lambda: sessions, clock)
        reporting = Reporting("pd", PagerDutyNotifier("malformed-key", pd.base_url), reporter)
        note = build_notification(build_alert(incident_key="inc-1"), receiver="pd")
        with pytest.raises(Exception, match="routing_key"):
            reporting.send(note)
        assert _meta_statuses(sessions) == ["firing"]
        clock.set(T0 + timedelta(minutes=5))
        reporting.inner = PagerDutyNotifier(PD_KEY, pd.base_url)
        reporting.send(note)
        assert _meta_statuses(sessions) == ["resolved"]
    with sessions() as session:
        [meta] = session.scalars(select(Incident).where(Incident.model == "vigil"))
        assert meta.resolved_at is not None
        assert meta.resolved_at.replace(tzinfo=UTC) == T0 + timedelta(minutes=5)
    engine.dispose()


def _meta_statuses(sessions: object) -> list[str]:
    with sessions() as session:  # type: ignore[operator]
        return [
            i.status for i in session.scalars(select(Incident).where(Incident.model == "vigil"))
        ]


# -- the estimate's decision threshold ---------------------------------------------------------


def _expected_confusion(
    reference_rows: dict[str, np.ndarray], window_scores: np.ndarray, threshold: float
) -> dict[str, float]:
    """CBPE by hand: sklearn's isotonic fit of the reference bins' positive rates (empty bins
    at their centre, as documented), times the window's score histogram, split at the bin
    whose lower edge reaches the threshold."""
    bins = np.clip((reference_rows["score"] * SCORE_BINS).astype(int), 0, SCORE_BINS - 1)
    count = np.bincount(bins, minlength=SCORE_BINS).astype(float)
    pos = np.bincount(bins, weights=reference_rows["label"], minlength=SCORE_BINS)
    centres = (np.arange(SCORE_BINS) + 0.5) / SCORE_BINS
    rates = np.where(count > 0, pos / np.maximum(count, 1), centres)
    weights = np.where(count > 0, count, 1e-6)
    x = np.arange(SCORE_BINS, dtype=float)
    calibrated = IsotonicRegression().fit(x, rates, sample_weight=weights).predict(x)
    w_bins = np.clip((window_scores * SCORE_BINS).astype(int), 0, SCORE_BINS - 1)
    hist = np.bincount(w_bins, minlength=SCORE_BINS).astype(float)
    decided = x / SCORE_BINS >= threshold - 1e-12
    tp = (hist * calibrated)[decided].sum()
    fp = (hist * (1 - calibrated))[decided].sum()
    fn = (hist * calibrated)[~decided].sum()
    return {
        "estimated.accuracy": (hist.sum() - fp - fn) / hist.sum(),
        "estimated.precision": tp / (tp + fp),
        "estimated.recall": tp / (tp + fn),
    }


@pytest.mark.parametrize("threshold", [0.3, 0.7])
def test_estimated_quality_decides_at_the_models_threshold(threshold: float) -> None:
    """The estimated confusion matrix splits the score histogram at the model's threshold
    from the detector settings, not at 0.5 (break: `window.settings.threshold` replaced by
    0.5 in `Estimated.compute`); checked against the same estimate built by hand with sklearn."""
    rng = np.random.default_rng(71)
    ref_score = rng.uniform(size=8000)
    ref_label = (rng.uniform(size=8000) < ref_score).astype(float)
    reference = reference_for(make_rows(rng, 8000, score=ref_score, label=ref_label), BINARY)
    score = rng.beta(2, 2, 6000)
    rows = make_rows(rng, 6000, score=score)
    settings = DetectorSettings(threshold=threshold)
    window = window_of(summarise(rows, reference, BINARY, threshold=threshold), settings)
    values = {v.metric: v for v in Estimated().compute(window, reference, Q_NOW)}
    expected = _expected_confusion({"score": ref_score, "label": ref_label}, score, threshold)
    for metric, want in expected.items():
        assert values[metric].value == pytest.approx(want, abs=1e-9), metric


# -- macro averages carry intervals ------------------------------------------------------------


def test_multiclass_macro_averages_carry_the_combined_interval() -> None:
    """A macro average's interval combines its classes' Wilson intervals: standard error
    sqrt(sum se_i^2) / k with se_i = (high_i - low_i) / (2 z), clipped to [0, 1]; the per-class
    intervals here come from scipy's `binomtest` (break: `ci=` dropped from `_macro`)."""
    rng = np.random.default_rng(72)
    n = 4000
    classes = np.array(["cat", "dog", "emu"])
    truth = rng.choice(classes, n, p=[0.5, 0.3, 0.2])
    pred = np.where(rng.uniform(size=n) < 0.75, truth, rng.choice(classes, n))
    rows = make_rows(rng, n, score=np.full(n, np.nan), label=truth.astype(object), decision=pred)
    reference = reference_for(rows, MULTICLASS)
    values = compute(window_of(summarise(rows, reference, MULTICLASS)), reference, "classification")
    for metric, denominator in (("precision", pred), ("recall", truth)):
        ses, means = [], []
        for cls in classes:
            k = int(((truth == cls) & (pred == cls)).sum())
            total = int((denominator == cls).sum())
            ci = stats.binomtest(k, total).proportion_ci(method="wilson")
            ses.append((ci.high - ci.low) / (2 * Z_95))
            means.append(k / total)
        mean = float(np.mean(means))
        se = math.sqrt(sum(s * s for s in ses)) / len(classes)
        macro = values[(metric, None)]
        assert macro.ci is not None, metric
        assert macro.ci[0] == pytest.approx(max(0.0, mean - Z_95 * se), abs=1e-9)
        assert macro.ci[1] == pytest.approx(min(1.0, mean + Z_95 * se), abs=1e-9)
    assert values[("macro_f1", None)].ci is not None


# -- a segment keeps the model's settings ----------------------------------------------------------


def test_a_segment_keeps_the_windows_settings_and_stream_times() -> None:
    """`segment()` changes only the counts: the threshold, drift settings, stream times and
    volume context stay the model's (break: `segment()` building a window without
    `settings`, which hands every segment's detector the default threshold and drift
    settings)."""
    settings = DetectorSettings(threshold=0.7, drift_alpha=0.01, drift_min_psi=0.3)
    part = BucketSummary(n=3)
    whole = BucketSummary(n=3, segments={"country=DE": part})
    window = WindowSummary(
        "1h",
        T0,
        T0 + HOUR,
        whole,
        newest_prediction=T0,
        newest_label=T0,
        last_bucket=3,
        baseline=(4,),
        settings=settings,
    )
    segment = window.segment("country=DE")
    assert segment.summary is part
    assert segment.settings == settings
    assert (segment.newest_prediction, segment.newest_label) == (T0, T0)
    assert (segment.last_bucket, segment.baseline) == (3, (4,))


# -- `features: all` leaves the score alone ------------------------------------------------------


def test_features_all_watches_input_features_not_the_score() -> None:
    """`features: all` yields drift values for the input features only; `@score` and
    `@prediction` appear only where an SLO names them (break: `wanted_feature` returning True
    for every feature)."""
    rng = np.random.default_rng(74)
    n = 3000
    amount = rng.lognormal(3, 1, n)
    rows = make_rows(rng, n, score=rng.uniform(size=n), amount=amount)
    reference = reference_for(rows, BINARY, features=["amount"])
    window = window_of(summarise(rows, reference, BINARY, features=["amount"]))
    slos = [
        {"metric": "drift.psi", "window": "24h", "objective": "< 0.2", "features": "all"},
        {"metric": "drift.js", "window": "24h", "objective": "< 0.2", "features": ["@score"]},
    ]
    model = build_config(config_dict("sqlite://", "sqlite://", slos=slos)).models["m"]
    values = compute_values(model, Windows({24 * HOUR: window}), reference, Q_NOW)
    by_metric: dict[str, set[str | None]] = {}
    for item in values:
        by_metric.setdefault(item.value.metric, set()).add(item.value.feature)
    assert by_metric["drift.psi"] == {"amount"}
    assert by_metric["drift.js"] == {"@score"}


# -- isotonic regression is scipy's ------------------------------------------------------------


def _pool_adjacent_violators(rates: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The hand-written loop Vigil used before scipy's, kept as the independent check."""
    blocks: list[list[float]] = []
    for r, w in zip(rates, weights, strict=True):
        blocks.append([float(r), float(w), 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, l2 = blocks.pop()
            v1, w1, l1 = blocks.pop()
            total = w1 + w2
            value = (v1 * w1 + v2 * w2) / total if total > 0 else (v1 + v2) / 2
            blocks.append([value, total, l1 + l2])
    return np.concatenate([np.full(int(length), value) for value, _, length in blocks])


@pytest.mark.parametrize("seed", range(20))
def test_isotonic_equals_the_pool_adjacent_violators_loop_to_machine_epsilon(seed: int) -> None:
    """`isotonic` (scipy's `isotonic_regression`) gives the old hand-written loop's result to
    machine epsilon (2.2e-16; the two sum pooled blocks in different orders) on rates in
    [0, 1] with bin-count weights, including the 1e-6 weights of empty bins."""
    rng = np.random.default_rng(seed)
    rates = rng.uniform(size=SCORE_BINS)
    weights = np.where(rng.uniform(size=SCORE_BINS) < 0.2, 1e-6, rng.integers(1, 500, SCORE_BINS))
    ours = isotonic(rates, weights.astype(float))
    np.testing.assert_allclose(
        ours, _pool_adjacent_violators(rates, weights), rtol=0, atol=np.finfo(float).eps
    )
    assert np.all(np.diff(ours) >= 0)
