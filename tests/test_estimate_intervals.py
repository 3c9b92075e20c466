"""The interval of a label-free estimate is the sampling interval of the estimate itself.

With the calibration map fixed by the reference, an estimate is a function of the window's
score histogram; over many windows drawn from one score distribution, its 95% interval must
contain the estimate's long-run value (the estimate on the population's histogram) in about
95% of them, and its width must match the spread of the estimates actually observed. Both
are checked by simulation, independently of the delta-method formula inside the detector.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from detectors.base import WindowSummary
from detectors.estimated import Estimated
from detectors.intervals import hanley_mcneil_interval
from monitor.core.reference import ReferenceSummary
from monitor.core.summaries import SCORE_BINS, BucketSummary
from monitor.core.values import MetricValue
from tests.test_quality_metrics import BINARY, NOW, T0, make_rows, reference_for

METRICS = (
    "estimated.accuracy",
    "estimated.precision",
    "estimated.recall",
    "estimated.f1",
    "estimated.roc_auc",
)
EDGES = np.linspace(0, 1, SCORE_BINS + 1)


def calibrated_reference(seed: int) -> ReferenceSummary:
    rng = np.random.default_rng(seed)
    score = rng.beta(2, 3, 20_000)
    label = (rng.uniform(size=score.size) < score).astype(float)
    return reference_for(make_rows(rng, score.size, score=score, label=label), BINARY)


def estimates(hist: np.ndarray, reference: ReferenceSummary) -> dict[str, MetricValue]:
    summary = BucketSummary(n=int(hist.sum()), score_hist=[int(h) for h in hist])
    window = WindowSummary("30d", T0, NOW, summary, None)
    return {v.metric: v for v in Estimated().compute(window, reference, NOW)}


@pytest.mark.parametrize("n", [400, 5000])
def test_estimate_intervals_cover_the_long_run_value_at_the_stated_rate(n: int) -> None:
    """600 windows of n scores from Beta(2, 3) (a calibrated model: the reference draws
    labels as Bernoulli(score)). The long-run value is each estimate on 10^9 rows in the
    population's exact bin shares (scipy's Beta cdf). Coverage of the 95% interval lies in
    [0.925, 0.975] for every metric (binomial sd at 600 windows: 0.009), and the interval's
    mean half-width / 1.96 is within 15% of the standard deviation of the 600 estimates."""
    reference = calibrated_reference(1)
    shares = np.diff(stats.beta.cdf(EDGES, 2, 3))
    long_run = estimates(np.round(shares * 1e9), reference)
    rng = np.random.default_rng(n)
    covered = dict.fromkeys(METRICS, 0)
    values: dict[str, list[float]] = {m: [] for m in METRICS}
    halves: dict[str, list[float]] = {m: [] for m in METRICS}
    windows = 600
    for _ in range(windows):
        hist = np.histogram(rng.beta(2, 3, n), bins=EDGES)[0]
        for metric, mv in estimates(hist, reference).items():
            truth = long_run[metric].value
            assert mv.value is not None and mv.ci is not None and truth is not None
            covered[metric] += mv.ci[0] <= truth <= mv.ci[1]
            values[metric].append(mv.value)
            halves[metric].append((mv.ci[1] - mv.ci[0]) / 2)
    for metric in METRICS:
        assert 0.925 <= covered[metric] / windows <= 0.975, (metric, covered[metric])
        observed_sd = float(np.std(values[metric], ddof=1))
        stated_sd = float(np.mean(halves[metric])) / 1.959963984540054
        assert stated_sd == pytest.approx(observed_sd, rel=0.15), metric


def test_estimate_interval_is_far_narrower_than_a_labelled_samples() -> None:
    """On 5 000 scores the estimated ROC AUC's interval is less than half as wide as the
    Hanley–McNeil interval a labelled sample of that size would have: no label noise enters
    an estimate, so borrowing the realised metric's interval would hide sustained drops."""
    reference = calibrated_reference(2)
    rng = np.random.default_rng(3)
    hist = np.histogram(rng.beta(2, 3, 5000), bins=EDGES)[0]
    mv = estimates(hist, reference)["estimated.roc_auc"]
    assert mv.value is not None and mv.ci is not None
    positives = 5000 * 0.4
    low, high = hanley_mcneil_interval(mv.value, positives, 5000 - positives)
    assert (mv.ci[1] - mv.ci[0]) < 0.5 * (high - low)
