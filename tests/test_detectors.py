"""Detector statistics, each checked against an independent implementation on the same data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from detectors.base import WindowSummary
from detectors.classification import Classification
from detectors.drift import Drift, decile_counts
from detectors.freshness import Freshness
from detectors.intervals import wilson_interval
from detectors.registry import DETECTORS
from detectors.stats import psi
from monitor.core.summaries import BucketSummary
from monitor.ingest.fit import fit_reference

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def window(summary: BucketSummary, newest: datetime | None = None) -> WindowSummary:
    return WindowSummary("1d", NOW - timedelta(days=1), NOW, summary, newest)


@given(st.integers(min_value=1, max_value=5000), st.data())
def test_wilson_interval_matches_scipy(n: int, data: st.DataObject) -> None:
    """Our Wilson interval equals scipy's binomtest(...).proportion_ci(method='wilson')."""
    k = data.draw(st.integers(min_value=0, max_value=n))
    expected = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(expected.low, abs=1e-9)
    assert high == pytest.approx(expected.high, abs=1e-9)


def psi_by_hand(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI as written in the literature, with evidently's 1e-4 floor on empty bins."""
    e = np.maximum(expected / expected.sum(), 1e-4)
    a = np.maximum(actual / actual.sum(), 1e-4)
    return float(sum((ai - ei) * np.log(ai / ei) for ai, ei in zip(a, e, strict=True)))


def test_psi_matches_evidently_on_the_same_bins() -> None:
    """PSI agrees with evidently's own PSI stattest on raw data binned at the reference deciles."""
    import pandas as pd
    from evidently.legacy.calculations.stattests.psi import psi_stat_test

    rng = np.random.default_rng(3)
    ref = rng.normal(0, 1, 20_000)
    cur = rng.normal(0.4, 1.2, 8_000)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1)
    ours = psi(ref_counts, cur_counts)
    assert ours == pytest.approx(psi_by_hand(ref_counts, cur_counts), rel=1e-12)
    # evidently bins numeric features itself; compare on categorical bin labels instead, which
    # it counts as given, so both sides see exactly the same histogram.
    ref_bins = pd.Series(np.searchsorted(edges, ref, side="right").astype(str))
    cur_bins = pd.Series(np.searchsorted(edges, cur, side="right").astype(str))
    theirs = psi_stat_test.func(ref_bins, cur_bins, "cat", 0.1)[0]
    assert ours == pytest.approx(theirs, rel=1e-9)


def test_psi_detector_numeric_and_categorical_per_feature() -> None:
    """The PSI detector reports one value per feature with n, from the reference's bins."""
    import pandas as pd

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {"x": rng.normal(0, 1, 5000), "c": rng.choice(["a", "b", "c"], 5000, p=[0.6, 0.3, 0.1])}
    )
    reference = fit_reference(frame, ["x", "c"], [], "fp")
    shifted = rng.normal(1.0, 1, 3000)
    edges = np.asarray(reference.numeric["x"].edges)
    counts = np.bincount(np.searchsorted(edges, shifted, side="right"), minlength=edges.size + 1)
    summary = BucketSummary(
        n=3000,
        numeric={"x": [int(c) for c in counts]},
        categorical={"c": {"a": 1000, "b": 1000, "c": 900, "new": 100}},
    )
    values = {
        v.feature: v
        for v in Drift().compute(window(summary), reference, NOW)
        if v.metric == "drift.psi"
    }
    assert values["x"].n == 3000
    assert values["x"].value == pytest.approx(
        psi(decile_counts(reference.numeric["x"].counts), decile_counts(list(counts)))
    )
    assert values["x"].value is not None and values["x"].value > 0.2
    ref_c = reference.categorical["c"].counts
    cats = ["a", "b", "c", "new"]
    expected_c = psi([ref_c.get(k, 0) for k in cats], [1000, 1000, 900, 100])
    assert values["c"].value == pytest.approx(expected_c)


def test_accuracy_counts_matching_decisions_with_wilson_interval() -> None:
    """Accuracy is the diagonal of the confusion counts over n, with the Wilson interval."""
    summary = BucketSummary(confusion={"1|1": 30, "0|0": 50, "1|0": 15, "0|1": 5})
    (value,) = [
        v for v in Classification().compute(window(summary), None, NOW) if v.metric == "accuracy"
    ]
    assert value.n == 100
    assert value.value == pytest.approx(0.8)
    assert value.ci == pytest.approx(wilson_interval(80, 100))


def test_prediction_age_is_time_since_newest_prediction() -> None:
    """Prediction age is now minus the newest prediction read, in seconds."""
    (value,) = [
        v
        for v in Freshness().compute(
            window(BucketSummary(n=3), newest=NOW - timedelta(minutes=42)), None, NOW
        )
        if v.metric == "freshness.prediction_age"
    ]
    assert value.value == pytest.approx(42 * 60)
    assert value.unit == "s"


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_detector_defines_insufficient_data_on_an_empty_window(name: str) -> None:
    """An empty window gives values of None (insufficient data) with n, never an exception."""
    import pandas as pd

    reference = fit_reference(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), ["x"], [], "fp")
    detector = DETECTORS[name]
    values = detector.compute(window(BucketSummary()), reference, NOW)
    assert values, f"{name} returned nothing"
    declared = {info.name for info in detector.metrics}
    for value in values:
        assert value.metric in declared
        assert value.window == "1d"
        if value.metric == "dq.new_categories":
            continue
        assert value.value is None, value
        assert value.n == 0


def test_constant_reference_feature_has_one_bin_and_zero_psi() -> None:
    """A constant feature gets a single bin; PSI against the same constant is 0, not NaN."""
    import pandas as pd

    reference = fit_reference(pd.DataFrame({"x": [5.0] * 100}), ["x"], [], "fp")
    assert reference.numeric["x"].edges == [5.0]
    summary = BucketSummary(n=10, numeric={"x": [0, 10]})
    (value,) = [
        v for v in Drift().compute(window(summary), reference, NOW) if v.metric == "drift.psi"
    ]
    assert value.value == pytest.approx(0.0)
