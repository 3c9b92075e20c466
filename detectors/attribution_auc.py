"""Where a ROC AUC change comes from: a pair decomposition over slices.

ROC AUC is not a weighted mean of per-slice AUCs: a positive from one slice and a negative
from another form a pair too. It is, exactly, a weighted mean over *pairs of slices*:

    AUC = sum_ij a_i b_j A_ij       a_i = P_i / P,  b_j = N_j / N

with A_ij the AUC of slice i's positives against slice j's negatives (ties count one half),
computed from per-slice, per-class score histograms on a shared bin grid. The change between
the reference period (0) and now (1) splits, with midpoints (bar) as in the Kitagawa/Das
Gupta split of `detectors.attribution`, into

    mix   = sum_ij (a1_i b1_j - a0_i b0_j) * Abar_ij
          = sum_i  da_i (sum_j bbar_j Abar_ij - AUCbar) + db_i (sum_j abar_j Abar_ji - AUCbar)
    perf  = sum_ij cbar_ij (A1_ij - A0_ij)           cbar_ij = (a0_i b0_j + a1_i b1_j) / 2

(mix + perf = AUC1 - AUC0 exactly; the centring on AUCbar adds zero since sum da = sum db =
0, and makes a slice's mix term mean something alone). Each mix term belongs to one slice.
A performance term of a pair of two slices depends on the positives of i and the negatives of
j; it is split between them by their Shapley values (the average of each one's effect with
the other before and after):

    to i:  [A(p1_i, n0_j) - A(p0_i, n0_j) + A(p1_i, n1_j) - A(p0_i, n1_j)] / 2,  j the rest.

So a slice whose scores got worse carries the pairs it spoiled, including the pairs with
other slices, while the slices that did not change get nothing. A slice with no positives
(or negatives) in one period uses the other period's histogram there; its weight is 0 on
that side, so the sum stays exact. The parts sum to the total change (tests/test_attribution_auc).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from detectors.attribution import Attribution, SliceContribution, pool_slices


@dataclass(frozen=True)
class SliceScores:
    """One slice in one period: rows seen, and labelled rows' score histograms per class
    (expected counts, not integers, for label-free estimates)."""

    count: int
    negatives: tuple[float, ...]
    positives: tuple[float, ...]

    @property
    def labelled(self) -> float:
        return sum(self.negatives) + sum(self.positives)


def _concordance(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """A[i, j]: the AUC of row i of `pos` against row j of `neg` (NaN where a side is empty)."""
    bins = pos.shape[1]
    below = np.tril(np.ones((bins, bins)), -1) + 0.5 * np.eye(bins)
    pairs = pos @ below @ neg.T
    sizes = np.outer(pos.sum(axis=1), neg.sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes > 0, pairs / np.where(sizes > 0, sizes, 1), np.nan)


def _pool(
    reference: Mapping[str, SliceScores], current: Mapping[str, SliceScores], min_count: int
) -> dict[str, tuple[SliceScores, SliceScores]]:
    bins = max(len(s.positives) for s in (*reference.values(), *current.values()))

    def add(a: SliceScores, b: SliceScores) -> SliceScores:
        return SliceScores(
            a.count + b.count,
            tuple(np.add(a.negatives, b.negatives).tolist()),
            tuple(np.add(a.positives, b.positives).tolist()),
        )

    empty = SliceScores(0, (0,) * bins, (0,) * bins)
    return pool_slices(reference, current, min_count, lambda s: s.labelled, add, empty)


def attribute_auc(
    dimension: str,
    reference: Mapping[str, SliceScores],
    current: Mapping[str, SliceScores],
    *,
    min_count: int = 30,
) -> Attribution:
    """Split the ROC AUC change over the slices of one dimension (see the module docstring)."""
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")
    if not reference and not current:
        raise ValueError(f"{dimension}: no slices")
    pairs = _pool(reference, current, min_count)
    names = list(pairs)
    pos = [np.array([pairs[k][t].positives for k in names], dtype=float) for t in (0, 1)]
    neg = [np.array([pairs[k][t].negatives for k in names], dtype=float) for t in (0, 1)]
    totals = [(pos[t].sum(), neg[t].sum()) for t in (0, 1)]
    if min(totals[0]) <= 0 or min(totals[1]) <= 0:
        raise ValueError(f"{dimension}: no positives or no negatives in the reference or now")
    for t in (0, 1):  # an empty side borrows the other period's histogram (weight 0 there)
        for h in (pos, neg):
            empty = h[t].sum(axis=1) == 0
            h[t][empty] = h[1 - t][empty]
    a = [_shares(pairs, names, t, "positives") / totals[t][0] for t in (0, 1)]
    b = [_shares(pairs, names, t, "negatives") / totals[t][1] for t in (0, 1)]
    cross = {(s, u): np.nan_to_num(_concordance(pos[s], neg[u])) for s in (0, 1) for u in (0, 1)}
    auc = [float(a[t] @ cross[(t, t)] @ b[t]) for t in (0, 1)]
    a_bar, b_bar = (a[0] + a[1]) / 2, (b[0] + b[1]) / 2
    m_bar = (cross[(0, 0)] + cross[(1, 1)]) / 2
    centre = (auc[0] + auc[1]) / 2
    mix = (a[1] - a[0]) * (m_bar @ b_bar - centre) + (b[1] - b[0]) * (a_bar @ m_bar - centre)
    weight = (np.outer(a[0], b[0]) + np.outer(a[1], b[1])) / 2
    own_pos = (cross[(1, 0)] - cross[(0, 0)] + cross[(1, 1)] - cross[(0, 1)]) / 2
    delta = cross[(1, 1)] - cross[(0, 0)]
    to_pos = np.where(np.eye(len(names), dtype=bool), delta, own_pos)
    to_neg = delta - to_pos
    performance = (weight * to_pos).sum(axis=1) + (weight * to_neg).sum(axis=0)
    within = [np.diag(_concordance(pos[t], neg[t])) for t in (0, 1)]
    n_rows = [sum(pairs[k][t].count for k in names) or 1 for t in (0, 1)]
    slices = []
    for i, value in enumerate(names):
        before, now = pairs[value]
        slices.append(
            SliceContribution(
                dimension,
                value,
                before.count / n_rows[0],
                now.count / n_rows[1],
                _metric(within[0][i], before),
                _metric(within[1][i], now),
                float(mix[i]),
                float(performance[i]),
            )
        )
    slices.sort(key=lambda s: (-abs(s.contribution), s.value))
    return Attribution("roc_auc", auc[0], auc[1], tuple(slices))


def _shares(
    pairs: Mapping[str, tuple[SliceScores, SliceScores]], names: list[str], period: int, side: str
) -> np.ndarray:
    """Each slice's own positives (or negatives) in a period, not a borrowed histogram's."""
    return np.array([sum(getattr(pairs[k][period], side)) for k in names], dtype=float)


def _metric(value: float, counts: SliceScores) -> float | None:
    """The within-slice AUC, None where the slice lacks positives or negatives."""
    if not sum(counts.positives) or not sum(counts.negatives) or np.isnan(value):
        return None
    return float(value)
