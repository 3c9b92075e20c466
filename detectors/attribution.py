"""Where a quality drop comes from: a shift-share split of a ratio metric over slices.

Issue 15 asks, for a breaching quality objective, which slices (segment values, feature
bins or categories) explain the change and whether the traffic *mix* moved or the model got
worse *inside* a slice. This module is only the arithmetic; it reads no rows and knows no
store. Callers hand it, per slice, mergeable counts for the reference and the current window.

Covered metrics are ratios that are additive over slices: accuracy (numerator = correct
rows, denominator = labelled rows) and error rate (numerator = wrong rows). For those the
total is a weighted mean of the slice metrics, M = sum_i w_i m_i with w_i = d_i / D, so the
change splits exactly. ROC AUC is NOT covered: it is not a weighted mean of per-slice AUCs
(pairs across slices count too); attributing it would need per-slice score histograms per
class and a within/between pair decomposition, which is left for later.

The split is the symmetric (midpoint) shift-share decomposition of Kitagawa (1955,
"Components of a difference between two rates", JASA 50) and Das Gupta (1978), which is
also the two-factor Shapley value: for each slice

    mix_i  = (w1_i - w0_i) * (mbar_i - Mbar)      mbar_i = (m0_i + m1_i) / 2
    perf_i = wbar_i * (m1_i - m0_i)               wbar_i = (w0_i + w1_i) / 2

with Mbar = (M0 + M1) / 2. Since w1 m1 - w0 m0 = dw * mbar + wbar * dm and sum_i dw_i = 0,
sum_i (mix_i + perf_i) = M1 - M0 exactly (up to rounding). Centring mbar on Mbar changes no
total but makes a slice's mix term mean something on its own: a slice that gains share only
lowers the metric if it is worse than average.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

OTHER = "(other)"
T = TypeVar("T")


@dataclass(frozen=True)
class SliceCounts:
    """Mergeable counts for one slice in one period (summed across buckets by the caller)."""

    count: int  # rows seen (traffic), labelled or not
    numerator: float  # e.g. correct rows for accuracy
    denominator: float  # rows the metric is computed on, e.g. labelled rows

    def __post_init__(self) -> None:
        if self.count < 0 or self.denominator < 0 or self.numerator < 0:
            raise ValueError(f"slice counts must be non-negative, got {self}")
        if self.numerator > self.denominator:
            raise ValueError(f"numerator exceeds denominator in {self}")


@dataclass(frozen=True)
class SliceContribution:
    """One slice's share, metric and contribution to the change, before and now."""

    dimension: str
    value: str
    traffic_before: float  # share of rows (count) in the reference
    traffic_now: float
    metric_before: float | None  # None when the slice had no metric rows in that period
    metric_now: float | None
    mix: float
    performance: float

    @property
    def contribution(self) -> float:
        return self.mix + self.performance


@dataclass(frozen=True)
class Attribution:
    """The total change and the slices ranked by absolute contribution, largest first."""

    metric: str
    before: float
    now: float
    slices: tuple[SliceContribution, ...]

    @property
    def change(self) -> float:
        return self.now - self.before


def pool_slices(
    reference: Mapping[str, T],
    current: Mapping[str, T],
    min_count: int,
    size: Callable[[T], float],
    add: Callable[[T, T], T],
    empty: T,
) -> dict[str, tuple[T, T]]:
    """Pair slices by value; those with fewer than min_count metric rows (`size`) on either
    side go into one "(other)" slice, so a slice is never ranked on a handful of rows."""
    pooled: dict[str, tuple[T, T]] = {}
    other = [empty, empty]
    for value in sorted(set(reference) | set(current)):
        before, now = reference.get(value, empty), current.get(value, empty)
        if value != OTHER and min(size(before), size(now)) >= min_count:
            pooled[value] = (before, now)
            continue
        other = [add(other[0], before), add(other[1], now)]
    if other[0] != empty or other[1] != empty:
        pooled[OTHER] = (other[0], other[1])
    return pooled


def _pool(
    reference: Mapping[str, SliceCounts], current: Mapping[str, SliceCounts], min_count: int
) -> dict[str, tuple[SliceCounts, SliceCounts]]:
    def add(a: SliceCounts, b: SliceCounts) -> SliceCounts:
        return SliceCounts(
            a.count + b.count, a.numerator + b.numerator, a.denominator + b.denominator
        )

    empty = SliceCounts(0, 0.0, 0.0)
    return pool_slices(reference, current, min_count, lambda c: c.denominator, add, empty)


def attribute(
    dimension: str,
    reference: Mapping[str, SliceCounts],
    current: Mapping[str, SliceCounts],
    *,
    metric: str = "accuracy",
    min_count: int = 30,
) -> Attribution:
    """Split the change of a ratio metric between reference and current over the slices
    of one dimension (a segment column or a feature's bins). See the module docstring."""
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")
    pairs = _pool(reference, current, min_count)
    d0 = sum(b.denominator for b, _ in pairs.values())
    d1 = sum(n.denominator for _, n in pairs.values())
    if d0 <= 0 or d1 <= 0:
        raise ValueError(f"{dimension}: no rows with a {metric} in the reference or now")
    n0 = sum(b.count for b, _ in pairs.values()) or 1
    n1 = sum(n.count for _, n in pairs.values()) or 1
    m_before = sum(b.numerator for b, _ in pairs.values()) / d0
    m_now = sum(n.numerator for _, n in pairs.values()) / d1
    centre = (m_before + m_now) / 2
    slices = []
    for value, (b, n) in pairs.items():
        w0, w1 = b.denominator / d0, n.denominator / d1
        r0 = b.numerator / b.denominator if b.denominator else None
        r1 = n.numerator / n.denominator if n.denominator else None
        # A slice with no metric rows on one side has no metric there: its change is all
        # mix (its weight on that side is 0, so any stand-in value keeps the sum exact).
        m0 = r0 if r0 is not None else (r1 if r1 is not None else centre)
        m1 = r1 if r1 is not None else m0
        mix = (w1 - w0) * ((m0 + m1) / 2 - centre)
        performance = (w0 + w1) / 2 * (m1 - m0)
        slices.append(
            SliceContribution(
                dimension, value, b.count / n0, n.count / n1, r0, r1, mix, performance
            )
        )
    slices.sort(key=lambda s: (-abs(s.contribution), s.value))
    return Attribution(metric, m_before, m_now, tuple(slices))


def format_line(item: SliceContribution, attribution: Attribution) -> str:
    """One line for an alert, e.g. "segment = EU: 12% → 25% of traffic, accuracy
    0.97 → 0.91, explains 61% of the drop (mostly performance)"."""

    def metric(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f}"

    change = attribution.change
    word = "drop" if change < 0 else "rise"
    explains = f"{item.contribution / change:.0%}" if change else "none"
    mostly = "performance" if abs(item.performance) >= abs(item.mix) else "mix"
    return (
        f"{item.dimension} = {item.value}: {item.traffic_before:.0%} → {item.traffic_now:.0%}"
        f" of traffic, {attribution.metric} {metric(item.metric_before)} →"
        f" {metric(item.metric_now)}, explains {explains} of the {word} (mostly {mostly})"
    )
