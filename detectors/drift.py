"""Drift of every feature (and of the score and decision) against the reference.

All statistics come from the window's histograms on the reference's bins. A feature has
drifted when its test is significant after correcting for the number of features tested
(Benjamini–Hochberg by default, or Bonferroni) *and* an effect size suited to the feature
clears its floor: with a million rows every difference is significant, and with two hundred
features one of them is significant by chance; the two rules together keep the page count
honest. The effect size is PSI for every feature and, for numeric ones, also the Wasserstein
distance in reference standard deviations (a mean shift of 0.1 sd is W = 0.1; a spread 20%
wider is W = 0.16 while its PSI stays under 0.05, because deciles move little when the
centre stays put). Categories are judged on PSI, which a rare new category moves strongly.

A floor fixed for large windows means nothing for small ones: sampling noise alone gives a
window of 1,000 rows a Wasserstein distance of about 0.045 sd on average (0.075 or more in
4-7% of windows), and 100 rows a decile PSI of about 0.09, so at those sizes the floors let
every significant test through, and a test at alpha 0.05 run on every daily window fires on
noise several times a year. Each floor therefore rises to what sampling noise alone exceeds
in only `noise_level` (1 in 1,000) of windows of this size against this reference: for PSI
the chi-square quantile (n_eff PSI is asymptotically chi-square with bins - 1 degrees of
freedom), for the Wasserstein distance its null mean times the matching normal quantile
(3.09; simulated normal windows exceed it in under 0.1% of draws, lognormal ones in about
0.5%: bench/README.md "Detection"). With 10,000 rows a window the fixed floors decide again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import numpy as np
from scipy import stats

from detectors.base import NON_NEGATIVE, SHARE, DetectorSettings, MetricInfo, WindowSummary
from detectors.intervals import wilson_interval
from detectors.stats import (
    adjust_p_values,
    chi_square,
    js_distance,
    ks_binned,
    psi,
    wasserstein_from_bins,
)
from monitor.core.reference import CategoricalReference, NumericReference, ReferenceSummary
from monitor.core.summaries import BucketSummary
from monitor.core.values import MetricValue


def _info(
    name: str,
    description: str,
    kind: str = "feature_drift",
    bounds: tuple[float, float] = SHARE,
) -> MetricInfo:
    return MetricInfo(name, "drift", kind, description=description, bounds=bounds)


@dataclass
class FeatureDrift:
    feature: str
    n: int
    psi: float
    js: float
    p_value: float
    ks: float | None = None
    wasserstein: float | None = None
    chi2: float | None = None
    adjusted_p: float = 1.0
    drifted: bool = False
    effect: str = ""
    """Which effect size cleared its floor ("psi" or "wasserstein"); empty when none did."""
    psi_noise: float = 0.0
    """The PSI sampling noise alone exceeds in `noise_level` of windows of this size."""
    wasserstein_noise: float | None = None
    """The mean Wasserstein distance (reference sd) sampling noise alone gives at this size."""


def effective_n(n: int, reference_n: int) -> float:
    """n N / (n + N): the sample size of a two-sample comparison."""
    return n * reference_n / (n + reference_n) if n and reference_n else 0.0


def psi_noise(bins: int, n: int, reference_n: int, level: float) -> float:
    """The PSI two samples of one distribution exceed with probability `level`: n_eff PSI is
    asymptotically chi-square with bins - 1 degrees of freedom (PSI is a symmetrised
    chi-square divergence). 0 when `level` is 0 (the check is off)."""
    ne = effective_n(n, reference_n)
    if not ne or bins < 2 or level <= 0:
        return 0.0
    return _chi2_isf(level, bins - 1) / ne


@lru_cache(maxsize=256)
def _chi2_isf(level: float, df: int) -> float:
    return float(stats.chi2.isf(level, df))


@lru_cache(maxsize=16)
def _normal_isf(level: float) -> float:
    return float(stats.norm.isf(level)) if level > 0 else 0.0


def wasserstein_noise(ref: NumericReference, n: int) -> float | None:
    """The mean binned Wasserstein distance (in reference sd) of a sample of n rows drawn from
    the reference itself: W = sum over bin boundaries of |F_cur - F_ref| times the gap between
    adjacent bin means, and under the null F_cur - F_ref is about normal with variance
    F (1 - F) / n_eff, so E|.| = sqrt(2 / pi) sd. Within-bin means add a little more noise
    (the measured mean is about 20% higher)."""
    counts = np.asarray(ref.counts, dtype=float)
    total = counts.sum()
    ne = effective_n(n, int(total))
    if not ref.std or not ne or len(ref.bin_means) != counts.size or counts.size < 2:
        return None
    cdf = np.cumsum(counts)[:-1] / total
    gaps = np.diff(np.asarray(ref.bin_means, dtype=float))
    spread = np.sqrt(2 / np.pi) * np.sqrt(cdf * (1 - cdf) / ne)
    return float(np.sum(spread * np.abs(gaps)) / ref.std)


def decile_counts(counts: list[int]) -> list[int]:
    """PSI is conventionally read on ten bins: pairs of the reference's twenty."""
    if len(counts) == 20:
        return [counts[i] + counts[i + 1] for i in range(0, 20, 2)]
    return counts


def numeric_drift(
    name: str, ref: NumericReference, summary: BucketSummary, level: float = 0.0
) -> FeatureDrift | None:
    counts = summary.numeric.get(name, [])
    n = sum(counts)
    if n == 0 or sum(ref.counts) == 0 or len(counts) != len(ref.counts):
        return None
    d, p_value = ks_binned(ref.counts, counts)
    sums = summary.numeric_sums.get(name)
    w: float | None = None
    if ref.std and ref.bin_means and sums and len(sums) == len(counts):
        w = wasserstein_from_bins(ref.bin_means, ref.counts, sums, counts) / ref.std
    deciles = decile_counts(ref.counts)
    return FeatureDrift(
        feature=name,
        n=n,
        psi=psi(deciles, decile_counts(counts)),
        js=js_distance(ref.counts, counts),
        p_value=p_value,
        ks=d,
        wasserstein=w,
        psi_noise=psi_noise(sum(1 for c in deciles if c), n, sum(ref.counts), level),
        wasserstein_noise=wasserstein_noise(ref, n) if w is not None else None,
    )


def categorical_drift(
    name: str, ref: CategoricalReference, summary: BucketSummary, level: float = 0.0
) -> FeatureDrift | None:
    current = summary.categorical.get(name, {})
    n = sum(current.values())
    if n == 0 or not ref.counts:
        return None
    categories = sorted(ref.counts.keys() | current.keys())
    expected = [ref.counts.get(c, 0) for c in categories]
    actual = [current.get(c, 0) for c in categories]
    statistic, p_value = chi_square(expected, actual)
    return FeatureDrift(
        feature=name,
        n=n,
        psi=psi(expected, actual),
        js=js_distance(expected, actual),
        p_value=p_value,
        chi2=statistic,
        psi_noise=psi_noise(len(categories), n, sum(expected), level),
    )


def effect_above_floor(drift: FeatureDrift, settings: DetectorSettings) -> str:
    """The effect size that clears its floor, PSI first; "" when the shift is negligible or
    no larger than sampling noise alone would make it at this window's size."""
    if drift.psi >= max(settings.drift_min_psi, drift.psi_noise):
        return "psi"
    multiple = _normal_isf(settings.drift_noise_level)
    w, noise = drift.wasserstein, drift.wasserstein_noise or 0.0
    if w is not None and w >= max(settings.drift_min_wasserstein, multiple * noise):
        return "wasserstein"
    return ""


def feature_drifts(window: WindowSummary, reference: ReferenceSummary) -> list[FeatureDrift]:
    """Every feature's statistics and verdict, most drifted first."""
    summary = window.summary
    settings = window.settings
    level = settings.drift_noise_level
    found = [numeric_drift(k, r, summary, level) for k, r in reference.numeric.items()]
    found += [categorical_drift(k, r, summary, level) for k, r in reference.categorical.items()]
    drifts = [d for d in found if d is not None]
    for drift, adjusted in zip(
        drifts, adjust_p_values([d.p_value for d in drifts], settings.drift_correction), strict=True
    ):
        drift.adjusted_p = adjusted
        drift.effect = effect_above_floor(drift, settings)
        drift.drifted = adjusted < settings.drift_alpha and bool(drift.effect)
    return sorted(drifts, key=lambda d: (not d.drifted, -d.psi))


class Drift:
    name: str = "drift"
    metrics: tuple[MetricInfo, ...] = (
        _info("drift.psi", "population stability index against the reference", bounds=NON_NEGATIVE),
        _info("drift.js", "Jensen–Shannon distance against the reference"),
        _info(
            "drift.wasserstein",
            "Wasserstein distance in reference standard deviations",
            bounds=NON_NEGATIVE,
        ),
        _info("drift.ks", "Kolmogorov–Smirnov statistic (numeric features)"),
        _info("drift.chi2", "chi-square statistic (categorical features)", bounds=NON_NEGATIVE),
        _info("drift.p_value", "p-value of the drift test, corrected for the features tested"),
        _info(
            "drift.detected",
            "1 when significant after correction and an effect size above its floor",
        ),
        _info("drift.share", "share of input features that drifted"),
        _info(
            "drift.missing_share",
            "missing share now minus in the reference",
            "missing_values",
            (-1.0, 1.0),
        ),
        _info("drift.new_category_share", "share of rows in unseen categories", "schema_change"),
    )

    def compute(
        self, window: WindowSummary, reference: ReferenceSummary | None, now: datetime
    ) -> list[MetricValue]:
        if reference is None:
            return []
        label = window.label
        out: list[MetricValue] = []
        drifts = feature_drifts(window, reference)
        by_name = {d.feature: d for d in drifts}
        for feature in (*reference.numeric, *reference.categorical):
            d = by_name.get(feature)
            if d is None:
                out += [
                    MetricValue(m, None, 0, label, feature)
                    for m in ("drift.psi", "drift.js", "drift.p_value", "drift.detected")
                ]
                continue
            values = {
                "drift.psi": d.psi,
                "drift.js": d.js,
                "drift.p_value": d.adjusted_p,
                "drift.detected": 1.0 if d.drifted else 0.0,
                "drift.ks": d.ks,
                "drift.wasserstein": d.wasserstein,
                "drift.chi2": d.chi2,
            }
            out += [
                MetricValue(metric, value, d.n, label, feature)
                for metric, value in values.items()
                if value is not None
            ]
        inputs = [d for d in drifts if not d.feature.startswith("@")]
        if inputs:
            drifted = sum(d.drifted for d in inputs)
            out.append(
                MetricValue(
                    "drift.share",
                    drifted / len(inputs),
                    min(d.n for d in inputs),
                    label,
                )
            )
        else:
            out.append(MetricValue("drift.share", None, 0, label))
        out += self._missing(window, reference) + self._new_categories(window, reference)
        return out

    @staticmethod
    def _missing(window: WindowSummary, reference: ReferenceSummary) -> list[MetricValue]:
        out = []
        summary = window.summary
        shapes: list[tuple[str, int, int, int]] = [
            (name, sum(summary.numeric.get(name, [])), ref.missing, sum(ref.counts))
            for name, ref in reference.numeric.items()
        ]
        shapes += [
            (
                name,
                sum(summary.categorical.get(name, {}).values()),
                ref.missing,
                sum(ref.counts.values()),
            )
            for name, ref in reference.categorical.items()
        ]
        for name, present, ref_missing, ref_present in shapes:
            missing = summary.missing.get(name, 0)
            n = present + missing
            ref_share = ref_missing / max(ref_missing + ref_present, 1)
            if n == 0:
                out.append(MetricValue("drift.missing_share", None, 0, window.label, name))
                continue
            low, high = wilson_interval(missing, n)
            out.append(
                MetricValue(
                    "drift.missing_share",
                    missing / n - ref_share,
                    n,
                    window.label,
                    name,
                    ci=(low - ref_share, high - ref_share),
                )
            )
        return out

    @staticmethod
    def _new_categories(window: WindowSummary, reference: ReferenceSummary) -> list[MetricValue]:
        out = []
        for name, ref in reference.categorical.items():
            current = window.summary.categorical.get(name, {})
            n = sum(current.values())
            unseen = sum(c for cat, c in current.items() if cat not in ref.counts)
            value = unseen / n if n else None
            ci = wilson_interval(unseen, n) if n else None
            out.append(MetricValue("drift.new_category_share", value, n, window.label, name, ci=ci))
        return out
