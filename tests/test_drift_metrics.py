"""Drift metrics on the full path, checked against scipy, evidently and numpy on the same rows.

Raw feature values go through `fit_reference` (the reference) and `summarize_predictions`
(the window's buckets, merged); the detector's numbers are compared with independent code on
the raw values: numpy on the reference-bin counts for PSI and JS, `scipy.spatial.distance.
jensenshannon`, `scipy.stats.ks_2samp`, `wasserstein_distance`, `chi2_contingency`,
`false_discovery_control`, and evidently's own PSI and Jensen–Shannon stattests. Binned
approximations state their tolerance in the docstring.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from detectors.base import DetectorSettings, WindowSummary
from detectors.drift import Drift, feature_drifts
from monitor.core.reference import ReferenceSummary
from monitor.core.summaries import merge_all
from monitor.core.values import MetricValue
from monitor.ingest.batches import PredictionBatch
from monitor.ingest.fit import fit_reference
from monitor.ingest.summarize import summarize_predictions

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
T0 = NOW - timedelta(days=1)
HOUR = timedelta(hours=1)
Values = dict[tuple[str, str | None], MetricValue]


def window_for(
    reference: ReferenceSummary,
    frame: pd.DataFrame,
    settings: DetectorSettings | None = None,
    score: np.ndarray | None = None,
    seed: int = 0,
) -> WindowSummary:
    """Summarise raw feature rows (spread over a day of 1h buckets) and merge the buckets."""
    rng = np.random.default_rng(seed)
    n = len(frame)
    ts = pd.Timestamp(T0) + pd.to_timedelta(rng.integers(0, 23 * 3600, n), unit="s")
    batch = PredictionBatch(
        ids=pd.Series(np.arange(n)),
        ts=pd.Series(ts),
        score=pd.Series(score) if score is not None else None,
        decision=None,
        features=frame.reset_index(drop=True),
    )
    buckets = summarize_predictions(batch, reference, "binary_classification", 0.5, HOUR, NOW)
    merged = merge_all(buckets.values())
    return WindowSummary(
        "1d", T0, NOW, merged, merged.newest_prediction, settings=settings or DetectorSettings()
    )


def drift_values(window: WindowSummary, reference: ReferenceSummary) -> Values:
    return {(v.metric, v.feature): v for v in Drift().compute(window, reference, NOW)}


def value(values: Values, metric: str, feature: str) -> float:
    v = values[(metric, feature)].value
    assert v is not None, (metric, feature)
    return v


def ventile_edges(ref: np.ndarray) -> np.ndarray:
    present = ref[np.isfinite(ref)]
    return np.unique(np.quantile(present, np.linspace(0, 1, 21)[1:-1]))


def bin_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    values = values[np.isfinite(values)]
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)


def numpy_psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.maximum(expected / expected.sum(), 1e-4)
    a = np.maximum(actual / actual.sum(), 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


def deciles(counts: np.ndarray) -> np.ndarray:
    return counts.reshape(-1, 2).sum(axis=1)


# --------------------------------------------------------------------------- PSI and JS


def test_psi_and_js_per_feature_match_numpy_and_scipy_on_the_reference_bins() -> None:
    """Numeric features: the reference's edges are the ventiles of its raw values; PSI is read
    on deciles (pairs of ventiles) and JS on the 20 ventile bins, and both equal numpy on the
    counts of the raw values in those bins, and `scipy.spatial.distance.jensenshannon` on the
    same proportions (1e-12: same counts, same formula). Categorical features and the score
    pseudo-feature `@score` likewise, a category unseen in the reference included."""
    rng = np.random.default_rng(1)
    ref = pd.DataFrame(
        {
            "x": rng.normal(0, 1, 20_000),
            "amount": rng.lognormal(3, 1, 20_000),
            "c": rng.choice(["a", "b", "c"], 20_000, p=[0.6, 0.3, 0.1]),
            "@score": rng.beta(2, 5, 20_000),
        }
    )
    cur = pd.DataFrame(
        {
            "x": rng.normal(0.3, 1.1, 8000),
            "amount": rng.lognormal(3.2, 1, 8000),
            "c": rng.choice(["a", "b", "c", "new"], 8000, p=[0.5, 0.3, 0.15, 0.05]),
        }
    )
    cur_score = rng.beta(2, 4, 8000)
    reference = fit_reference(ref, ["x", "amount", "c"], [], "fp")
    values = drift_values(window_for(reference, cur, score=cur_score), reference)

    for name, cur_values in (("x", cur["x"]), ("amount", cur["amount"]), ("@score", cur_score)):
        raw_ref = ref[name].to_numpy()
        edges = ventile_edges(raw_ref)
        np.testing.assert_allclose(reference.numeric[name].edges, edges, rtol=0, atol=0)
        e, a = bin_counts(edges, raw_ref), bin_counts(edges, np.asarray(cur_values))
        assert value(values, "drift.psi", name) == pytest.approx(
            numpy_psi(deciles(e), deciles(a)), abs=1e-12
        )
        assert value(values, "drift.js", name) == pytest.approx(
            jensenshannon(e / e.sum(), a / a.sum()), abs=1e-12
        )
        assert values[("drift.psi", name)].n == len(cur)

    cats = ["a", "b", "c", "new"]
    e = ref["c"].value_counts().reindex(cats, fill_value=0).to_numpy()
    a = cur["c"].value_counts().reindex(cats, fill_value=0).to_numpy()
    assert value(values, "drift.psi", "c") == pytest.approx(numpy_psi(e, a), abs=1e-12)
    assert value(values, "drift.js", "c") == pytest.approx(
        jensenshannon(e / e.sum(), a / a.sum()), abs=1e-12
    )


def test_psi_matches_evidently_psi_stattest_on_the_same_binned_data() -> None:
    """evidently 0.7's `psi_stat_test`, given the decile label of each raw value (so it counts
    exactly the histogram Vigil reads PSI on), and given raw categories (one of them unseen in
    the reference: both floor the empty proportion at 1e-4), agrees with Vigil's PSI to 1e-9."""
    from evidently.legacy.calculations.stattests.psi import psi_stat_test

    rng = np.random.default_rng(2)
    ref = pd.DataFrame(
        {"x": rng.gamma(2, 2, 10_000), "c": rng.choice(["a", "b", "c"], 10_000, p=[0.5, 0.3, 0.2])}
    )
    cur = pd.DataFrame(
        {
            "x": rng.gamma(2.4, 2, 4000),
            "c": rng.choice(["a", "b", "c", "zz"], 4000, p=[0.4, 0.3, 0.25, 0.05]),
        }
    )
    reference = fit_reference(ref, ["x", "c"], [], "fp")
    values = drift_values(window_for(reference, cur), reference)
    edges = np.asarray(reference.numeric["x"].edges)

    def decile_labels(v: pd.Series) -> pd.Series:
        return pd.Series((np.searchsorted(edges, v.to_numpy(), side="right") // 2).astype(str))

    theirs = psi_stat_test.func(decile_labels(ref["x"]), decile_labels(cur["x"]), "cat", 0.1)[0]
    assert value(values, "drift.psi", "x") == pytest.approx(theirs, rel=1e-9)
    theirs_c = psi_stat_test.func(ref["c"], cur["c"], "cat", 0.1)[0]
    assert value(values, "drift.psi", "c") == pytest.approx(theirs_c, rel=1e-9)


# --------------------------------------------------------------------------- KS, Wasserstein


SHIFTS = [(0.0, 1.0), (0.05, 1.0), (0.1, 1.0), (0.3, 1.0), (0.6, 1.0), (0.0, 1.5), (1.5, 1.0)]


def test_binned_ks_is_within_one_bins_mass_of_scipy_ks_2samp_on_raw_values() -> None:
    """The binned KS statistic reads the two CDFs at the reference's ventile edges only, so it
    is never above scipy's `ks_2samp` on the raw values and below it by at most the largest
    mass either sample puts in one bin (1/20 for the reference; more for the window only where
    it piled up); for smooth shifts the gap is far smaller: asserted < 0.01, observed at most
    0.002 with 20 000 reference and 8 000 window rows."""
    rng = np.random.default_rng(3)
    ref = rng.normal(0, 1, 20_000)
    reference = fit_reference(pd.DataFrame({"x": ref}), ["x"], [], "fp")
    edges = np.asarray(reference.numeric["x"].edges)
    for shift, scale in SHIFTS:
        cur = rng.normal(shift, scale, 8000)
        values = drift_values(window_for(reference, pd.DataFrame({"x": cur})), reference)
        binned = value(values, "drift.ks", "x")
        raw = stats.ks_2samp(ref, cur).statistic
        heaviest = max(
            (bin_counts(edges, ref) / ref.size).max(), (bin_counts(edges, cur) / cur.size).max()
        )
        assert binned <= raw + 1e-12, (shift, scale)
        assert raw - binned <= heaviest, (shift, scale)
        assert raw - binned < 0.01, (shift, scale)


def test_ks_p_values_order_features_like_scipy() -> None:
    """Over features shifted by increasing amounts, the binned KS p-values (before correction)
    fall in the same order as `ks_2samp`'s on the raw values, and stay within a factor of a few
    of them where both are not tiny: a binned test loses only a little power."""
    rng = np.random.default_rng(4)
    shifts = [0.0, 0.04, 0.08, 0.12, 0.2, 0.35]
    ref = pd.DataFrame({f"x{i}": rng.normal(0, 1, 20_000) for i in range(len(shifts))})
    cur = pd.DataFrame({f"x{i}": rng.normal(s, 1, 8000) for i, s in enumerate(shifts)})
    reference = fit_reference(ref, list(ref.columns), [], "fp")
    drifts = {d.feature: d for d in feature_drifts(window_for(reference, cur), reference)}
    ours = [drifts[f"x{i}"].p_value for i in range(len(shifts))]
    theirs = [stats.ks_2samp(ref[f"x{i}"], cur[f"x{i}"]).pvalue for i in range(len(shifts))]
    assert np.argsort(ours).tolist() == np.argsort(theirs).tolist()
    for o, t in zip(ours, theirs, strict=True):
        if t > 1e-4:
            assert 0.2 < o / t < 5, (o, t)


WASSERSTEIN_CASES = {
    # name: (reference sample, window samples); all seeded
    "normal": (
        lambda rng: rng.normal(0, 1, 20_000),
        lambda rng: (
            [rng.normal(s, 1, 8000) for s in (0.0, 0.2, 0.5, 2.0)] + [rng.normal(0, 1.6, 8000)]
        ),
    ),
    "lognormal": (
        lambda rng: rng.lognormal(3, 0.8, 20_000),
        lambda rng: [rng.lognormal(3.4, 0.8, 8000), rng.lognormal(3, 1.2, 8000)],
    ),
}


def wasserstein_pairs(kind: str) -> list[tuple[float, float]]:
    """(Vigil's drift.wasserstein, scipy's wasserstein_distance / reference std) per window."""
    rng = np.random.default_rng(5)
    make_ref, make_windows = WASSERSTEIN_CASES[kind]
    ref = make_ref(rng)
    reference = fit_reference(pd.DataFrame({"x": ref}), ["x"], [], "fp")
    out = []
    for cur in make_windows(rng):
        values = drift_values(window_for(reference, pd.DataFrame({"x": cur})), reference)
        expected = stats.wasserstein_distance(ref, cur) / ref.std(ddof=1)
        out.append((value(values, "drift.wasserstein", "x"), expected))
    return out


def test_binned_wasserstein_orders_shifts_like_scipy() -> None:
    """On normal features `drift.wasserstein` stays within 10% of
    `scipy.stats.wasserstein_distance(ref, cur) / std(ref)` on the raw values, grows with the
    shift as scipy's does, and is near 0 without a shift."""
    pairs = wasserstein_pairs("normal")
    for ours, theirs in pairs:
        assert 0.9 * theirs <= ours <= 1.1 * theirs, (ours, theirs)
    shifts = [ours for ours, _ in pairs[:4]]
    assert shifts == sorted(shifts)
    assert shifts[0] < 0.05


def test_wasserstein_within_10_percent_of_scipy() -> None:
    """`drift.wasserstein` is within 10% of scipy's normalised Wasserstein distance for a
    shifted or widened normal and a shifted or widened lognormal: each reference bin's mass
    sits at the mean of its values, on both sides, so only within-bin spread is lost."""
    for kind in WASSERSTEIN_CASES:
        for ours, theirs in wasserstein_pairs(kind)[1:]:
            assert ours == pytest.approx(theirs, rel=0.10), kind


# --------------------------------------------------------------------------- categorical


def test_chi_square_matches_scipy_chi2_contingency() -> None:
    """The chi-square statistic and p-value of a categorical feature equal scipy's
    `chi2_contingency` (without Yates' correction, so 2 categories and more behave alike) on
    the reference × window table of raw category counts, an unseen category included (1e-9)."""
    rng = np.random.default_rng(6)
    for cats_ref, p_ref, cats_cur, p_cur in (
        (["a", "b", "c", "d"], [0.4, 0.3, 0.2, 0.1], [*"abcde"], [0.35] + [0.1625] * 4),
        (["yes", "no"], [0.7, 0.3], ["yes", "no"], [0.67, 0.33]),
    ):
        ref = pd.DataFrame({"c": rng.choice(cats_ref, 6000, p=p_ref)})
        cur = pd.DataFrame({"c": rng.choice(cats_cur, 3000, p=p_cur)})
        reference = fit_reference(ref, ["c"], ["c"], "fp")
        window = window_for(reference, cur)
        values = drift_values(window, reference)
        (d,) = feature_drifts(window, reference)
        table = pd.crosstab(
            np.r_[np.zeros(len(ref)), np.ones(len(cur))], np.r_[ref["c"], cur["c"]]
        ).to_numpy()
        expected = stats.chi2_contingency(table, correction=False)
        assert value(values, "drift.chi2", "c") == pytest.approx(expected.statistic, rel=1e-9)
        assert d.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
        assert ("drift.ks", "c") not in values and ("drift.wasserstein", "c") not in values


def test_missing_values_are_counted_not_dropped() -> None:
    """NaN (numeric) and None (categorical) are not silently dropped: `drift.missing_share` is
    the window's missing share minus the reference's (exact counts), with the Wilson interval
    shifted alike; PSI and `n` cover only the present values; a column that is all NaN in the
    window has no PSI (None) but a missing share of 1 minus the reference's."""
    rng = np.random.default_rng(7)
    ref_x = rng.normal(0, 1, 5000)
    ref_x[:250] = np.nan  # 5% missing in the reference
    ref_c = rng.choice(np.array(["a", "b", None], dtype=object), 5000, p=[0.5, 0.45, 0.05])
    reference = fit_reference(
        pd.DataFrame({"x": ref_x, "c": ref_c, "gone": rng.normal(0, 1, 5000)}),
        ["x", "c", "gone"],
        [],
        "fp",
    )
    cur_x = rng.normal(0, 1, 2000)
    cur_x[rng.uniform(size=2000) < 0.2] = np.nan
    cur_c = rng.choice(np.array(["a", "b", None], dtype=object), 2000, p=[0.4, 0.3, 0.3])
    cur = pd.DataFrame({"x": cur_x, "c": cur_c, "gone": np.full(2000, np.nan)})
    values = drift_values(window_for(reference, cur), reference)

    for name, r, c in (("x", ref_x, cur_x), ("c", ref_c, cur_c)):
        ref_share = pd.isna(r).mean()
        cur_missing = int(pd.isna(c).sum())
        mv = values[("drift.missing_share", name)]
        assert mv.value == pytest.approx(cur_missing / 2000 - ref_share, abs=1e-12)
        assert mv.n == 2000
        wilson = stats.binomtest(cur_missing, 2000).proportion_ci(method="wilson")
        assert mv.ci == pytest.approx((wilson.low - ref_share, wilson.high - ref_share), abs=1e-9)
        assert values[("drift.psi", name)].n == 2000 - cur_missing
    assert value(values, "drift.missing_share", "x") > 0.1  # flagged as its own signal
    edges = np.asarray(reference.numeric["x"].edges)
    expected = numpy_psi(deciles(bin_counts(edges, ref_x)), deciles(bin_counts(edges, cur_x)))
    assert value(values, "drift.psi", "x") == pytest.approx(expected, abs=1e-12)
    assert values[("drift.psi", "gone")].value is None
    assert value(values, "drift.missing_share", "gone") == pytest.approx(1.0)


def test_new_categories_are_counted() -> None:
    """Rows in categories the reference never saw are counted: `drift.new_category_share` is
    their share of the window's present values, with its Wilson interval."""
    rng = np.random.default_rng(8)
    reference = fit_reference(pd.DataFrame({"c": rng.choice(["DE", "FR"], 3000)}), ["c"], [], "fp")
    cur = pd.Series(rng.choice(["DE", "FR", "US", "JP", None], 1000, p=[0.4, 0.4, 0.1, 0.05, 0.05]))
    values = drift_values(window_for(reference, pd.DataFrame({"c": cur})), reference)
    present = cur.dropna()
    unseen = int(present.isin(["US", "JP"]).sum())
    mv = values[("drift.new_category_share", "c")]
    assert mv.value == pytest.approx(unseen / len(present), abs=1e-12)
    assert mv.n == len(present)
    wilson = stats.binomtest(unseen, len(present)).proportion_ci(method="wilson")
    assert mv.ci == pytest.approx((wilson.low, wilson.high), abs=1e-9)


# --------------------------------------------------------------------------- many features


def kstwo_p(e: np.ndarray, a: np.ndarray) -> float:
    """Asymptotic two-sample KS p-value of the largest CDF gap at the bin edges."""
    d = np.max(np.abs(np.cumsum(e) / e.sum() - np.cumsum(a) / a.sum()))
    return float(stats.kstwobign.sf(d * np.sqrt(e.sum() * a.sum() / (e.sum() + a.sum()))))


@pytest.mark.parametrize("correction", ["bh", "bonferroni"])
def test_p_value_correction_matches_scipy(correction: str) -> None:
    """Raw p-values are the binned KS test's (numeric) and chi-square's (categorical), equal to
    an independent computation on the raw values' bin counts (1e-9); `drift.p_value` is them
    adjusted by `scipy.stats.false_discovery_control(p, method="bh")` or by Bonferroni
    (min(1, p × m)) over all m features (1e-12); `drift.detected` is adjusted p < alpha and
    PSI ≥ its floor or (numeric) Wasserstein ≥ its floor (0.075 sd by default)."""
    rng = np.random.default_rng(9)
    shifts = np.linspace(0, 0.25, 24)
    ref = pd.DataFrame({f"x{i}": rng.normal(0, 1, 5000) for i in range(len(shifts))})
    cur = pd.DataFrame({f"x{i}": rng.normal(s, 1, 2000) for i, s in enumerate(shifts)})
    ref["c"] = rng.choice(["a", "b"], 5000)
    cur["c"] = rng.choice(["a", "b"], 2000, p=[0.45, 0.55])
    reference = fit_reference(ref, list(ref.columns), [], "fp")
    settings = DetectorSettings(drift_correction=correction, drift_alpha=0.05, drift_min_psi=0.02)
    window = window_for(reference, cur, settings)
    values = drift_values(window, reference)
    names = list(ref.columns)
    raw = []
    for name in names[:-1]:
        edges = ventile_edges(ref[name].to_numpy())
        raw.append(kstwo_p(bin_counts(edges, ref[name].to_numpy()), bin_counts(edges, cur[name])))
    raw.append(
        stats.chi2_contingency(
            pd.crosstab(np.r_[np.zeros(5000), np.ones(2000)], np.r_[ref["c"], cur["c"]]).to_numpy(),
            correction=False,
        ).pvalue
    )
    drifts = {d.feature: d for d in feature_drifts(window, reference)}
    np.testing.assert_allclose([drifts[n].p_value for n in names], raw, rtol=1e-9)
    if correction == "bh":
        adjusted = stats.false_discovery_control(raw, method="bh")
    else:
        adjusted = np.minimum(np.asarray(raw) * len(raw), 1.0)
    ours = [value(values, "drift.p_value", n) for n in names]
    np.testing.assert_allclose(ours, adjusted, rtol=1e-12, atol=1e-300)
    for name, adj in zip(names, adjusted, strict=True):
        w = drifts[name].wasserstein
        want = adj < 0.05 and (drifts[name].psi >= 0.02 or (w is not None and w >= 0.075))
        assert value(values, "drift.detected", name) == float(want), name
    assert 0 < sum(value(values, "drift.detected", n) for n in names) < len(names)


@pytest.mark.parametrize("correction", ["bh", "bonferroni"])
def test_200_unshifted_features_do_not_page_and_3_shifted_rank_first(correction: str) -> None:
    """With 200 unshifted numeric features and 3 shifted ones (reference 5 000 rows, window
    2 000, seeded), the corrected test flags none of the unshifted (at most 2 allowed: the
    family-wise false-alarm rate is about alpha), all 3 shifted are flagged, and
    `feature_drifts()` ranks them first; `drift.share` is 3 / 203."""
    rng = np.random.default_rng(10)
    names = [f"f{i:03d}" for i in range(203)]
    ref = pd.DataFrame(rng.normal(0, 1, (5000, 203)), columns=names)
    cur_values = rng.normal(0, 1, (2000, 203))
    shifted = ["f017", "f101", "f188"]
    for name, (shift, scale) in zip(shifted, [(0.5, 1), (0, 1.7), (-0.4, 1.2)], strict=True):
        cur_values[:, names.index(name)] = rng.normal(shift, scale, 2000)
    cur = pd.DataFrame(cur_values, columns=names)
    reference = fit_reference(ref, names, [], "fp")
    window = window_for(reference, cur, DetectorSettings(drift_correction=correction))
    drifts = feature_drifts(window, reference)
    flagged = {d.feature for d in drifts if d.drifted}
    assert set(shifted) <= flagged
    assert len(flagged - set(shifted)) <= 2, flagged
    assert {d.feature for d in drifts[:3]} == set(shifted)
    values = drift_values(window, reference)
    share = values[("drift.share", None)]
    assert share.value == pytest.approx(len(flagged) / 203)
    assert share.n == 2000


def test_small_categorical_shift_missed_by_a_fixed_js_threshold_is_flagged() -> None:
    """A categorical shift (50/30/20% → 38/35/27%) whose Jensen–Shannon distance is below
    evidently's fixed 0.1 threshold (evidently's own `jensenshannon_stat_test` says "no drift",
    as does scipy's `jensenshannon` on the proportions) is flagged by `drift.detected` with
    5 000 rows on each side: its chi-square test is overwhelmingly significant and its PSI
    (about 0.06) clears the 0.05 floor."""
    from evidently.legacy.calculations.stattests.jensenshannon import jensenshannon_stat_test

    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"c": rng.choice(["a", "b", "c"], 5000, p=[0.5, 0.3, 0.2])})
    cur = pd.DataFrame({"c": rng.choice(["a", "b", "c"], 5000, p=[0.38, 0.35, 0.27])})
    reference = fit_reference(ref, ["c"], [], "fp")
    values = drift_values(window_for(reference, cur), reference)
    js_value, evidently_drift = jensenshannon_stat_test.func(ref["c"], cur["c"], "cat", 0.1)
    assert js_value < 0.1 and not evidently_drift
    assert value(values, "drift.js", "c") == pytest.approx(js_value, abs=1e-12)
    assert value(values, "drift.detected", "c") == 1.0
    assert value(values, "drift.psi", "c") >= 0.05


def _shift_frame(
    rng: np.random.Generator, n: int, shifts: dict[str, tuple[float, float]]
) -> pd.DataFrame:
    return pd.DataFrame({k: rng.normal(mean, scale, n) for k, (mean, scale) in shifts.items()})


def test_spread_and_small_mean_shifts_under_the_psi_floor_are_flagged_on_wasserstein() -> None:
    """100 000 rows against 100 000 reference rows: a spread 20% wider (scipy's Wasserstein
    0.16 reference sd) and a mean moved by 0.1 sd both have PSI under the 0.05 floor, yet
    both are flagged, because their Wasserstein distance (within 10% of scipy's on the raw
    values) clears the 0.075 sd floor and their KS test is overwhelming; an unshifted column
    is not flagged."""
    rng = np.random.default_rng(21)
    n = 100_000
    ref = _shift_frame(rng, n, {"wide": (0, 1), "moved": (0, 1), "same": (0, 1)})
    cur = _shift_frame(rng, n, {"wide": (0, 1.2), "moved": (0.1, 1), "same": (0, 1)})
    reference = fit_reference(ref, list(ref.columns), [], "fp")
    values = drift_values(window_for(reference, cur), reference)
    for name in ("wide", "moved"):
        expected = stats.wasserstein_distance(ref[name], cur[name]) / ref[name].std()
        assert value(values, "drift.wasserstein", name) == pytest.approx(expected, rel=0.1)
        assert value(values, "drift.psi", name) < 0.05
        assert value(values, "drift.detected", name) == 1.0
    assert value(values, "drift.wasserstein", "wide") > 0.14
    assert value(values, "drift.detected", "same") == 0.0
    drifts = {d.feature: d for d in feature_drifts(window_for(reference, cur), reference)}
    assert drifts["wide"].effect == drifts["moved"].effect == "wasserstein"


def test_negligible_shifts_at_a_million_rows_are_significant_but_not_flagged() -> None:
    """At 1 000 000 rows a mean shift of 0.02 sd and a spread 3% wider are significant
    (scipy's ks_2samp p < 1e-6 on the raw values) but negligible: PSI and Wasserstein both
    stay under their floors, so neither is flagged; with the Wasserstein floor set to 0 the
    same columns are flagged, so the floor is what keeps them quiet."""
    rng = np.random.default_rng(22)
    n = 1_000_000
    ref = _shift_frame(rng, n, {"moved": (0, 1), "wide": (0, 1)})
    cur = _shift_frame(rng, n, {"moved": (0.02, 1), "wide": (0, 1.03)})
    reference = fit_reference(ref, list(ref.columns), [], "fp")
    for name in ("moved", "wide"):
        assert stats.ks_2samp(ref[name], cur[name]).pvalue < 1e-6
    window = window_for(reference, cur)
    values = drift_values(window, reference)
    for name in ("moved", "wide"):
        assert value(values, "drift.psi", name) < 0.05
        assert value(values, "drift.wasserstein", name) < 0.075
        assert value(values, "drift.detected", name) == 0.0
    loose = window_for(reference, cur, DetectorSettings(drift_min_wasserstein=0.0))
    assert all(d.drifted for d in feature_drifts(loose, reference))
