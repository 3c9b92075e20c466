"""Fits the reference summary on the period a team trusts: quantile edges, category counts,
the top segment values and, with labels, the per-class score histogram estimates calibrate on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.core.reference import (
    CLASS_SCORE_PREFIX,
    LABEL_COLUMN,
    PREDICTION_COLUMN,
    REFERENCE_BINS,
    SCORE_COLUMN,
    CategoricalReference,
    NumericReference,
    ReferenceSummary,
    category_strings,
    is_categorical,
)
from monitor.core.summaries import SCORE_BINS, BucketSummary
from monitor.ingest.bucketing import MAX_SEGMENT_VALUES
from monitor.ingest.classes import binary_classes, class_strings, score_bins
from monitor.ingest.summarize_classes import fold_labelled_classes


def fit_reference(
    frame: pd.DataFrame,
    features: list[str],
    categorical: list[str],
    spec_fingerprint: str,
    task: str = "binary_classification",
    pooled_segments: tuple[str, ...] = (),
) -> ReferenceSummary:
    """Fit quantile edges for numeric columns and category counts for the others.

    The score and decision columns, when the frame has them, are fitted as pseudo-features;
    with labels too, the per-class score histogram calibrates estimated quality.
    """
    columns = list(features)
    if SCORE_COLUMN in frame:
        columns.append(SCORE_COLUMN)
    if PREDICTION_COLUMN in frame:
        columns.append(PREDICTION_COLUMN)
    forced = set(categorical)
    if task != "regression":
        forced.add(PREDICTION_COLUMN)
    numeric: dict[str, NumericReference] = {}
    cats: dict[str, CategoricalReference] = {}
    for name in columns:
        series = frame[name] if name in frame else pd.Series([], dtype=float)
        if is_categorical(series, name in forced):
            counts = category_strings(series).value_counts()
            cats[name] = CategoricalReference(
                counts={str(k): int(v) for k, v in counts.items()},
                missing=int(series.isna().sum()),
            )
        else:
            numeric[name] = _fit_numeric(pd.to_numeric(series, errors="coerce"))
    return ReferenceSummary(
        fingerprint=spec_fingerprint,
        n=len(frame),
        numeric=numeric,
        categorical=cats,
        class_score_hist=_class_score_hist(frame) if task == "binary_classification" else {},
        segment_values={
            column: _top_values(frame[column]) for column in pooled_segments if column in frame
        },
        ovr_score_hist=_ovr_score_hist(frame) if task == "multiclass_classification" else {},
    )


def _top_values(series: pd.Series) -> list[str]:
    """The most frequent values of a segment column, fixed once so pooling is mergeable."""
    counts = category_strings(series).value_counts()
    return [str(v) for v in counts.index[:MAX_SEGMENT_VALUES]]


def _fit_numeric(series: pd.Series) -> NumericReference:
    values = series.to_numpy(dtype=float)
    present = values[np.isfinite(values)]
    if not present.size:
        return NumericReference([], [0], int(values.size), None, None, None, None)
    quantiles = np.quantile(present, np.linspace(0, 1, REFERENCE_BINS + 1)[1:-1])
    edges = np.unique(quantiles)
    bins = np.searchsorted(edges, present, side="right")
    counts = np.bincount(bins, minlength=edges.size + 1)
    sums = np.bincount(bins, weights=present, minlength=edges.size + 1)
    return NumericReference(
        edges=[float(e) for e in edges],
        counts=[int(c) for c in counts],
        missing=int(values.size - present.size),
        minimum=float(present.min()),
        maximum=float(present.max()),
        mean=float(present.mean()),
        std=float(present.std(ddof=1)) if present.size > 1 else 0.0,
        bin_means=[float(s / c) if c else 0.0 for s, c in zip(sums, counts, strict=True)],
    )


def _class_score_hist(frame: pd.DataFrame) -> dict[str, list[int]]:
    if SCORE_COLUMN not in frame or LABEL_COLUMN not in frame:
        return {}
    score = pd.to_numeric(frame[SCORE_COLUMN], errors="coerce").to_numpy(dtype=float)
    label = binary_classes(frame[LABEL_COLUMN]).fillna("").to_numpy()  # NA: no usable label
    ok = np.isfinite(score)
    out: dict[str, list[int]] = {}
    for cls in ("0", "1"):
        mask = ok & (label == cls)
        if mask.any():
            hist = np.bincount(score_bins(score[mask]), minlength=SCORE_BINS)
            out[cls] = [int(c) for c in hist]
    return out


def _ovr_score_hist(frame: pd.DataFrame) -> dict[str, list[int]]:
    """Per class (`@score:X` columns), its one-vs-rest score histograms on the labelled rows."""
    columns = [c for c in frame.columns if str(c).startswith(CLASS_SCORE_PREFIX)]
    if not columns or LABEL_COLUMN not in frame:
        return {}
    labelled = frame[frame[LABEL_COLUMN].notna()]
    truth = class_strings(labelled[LABEL_COLUMN], "multiclass_classification").to_numpy()
    scores = labelled[columns].rename(columns=lambda c: str(c)[len(CLASS_SCORE_PREFIX) :])
    summary = BucketSummary()
    fold_labelled_classes([summary], np.zeros(len(labelled), dtype=np.int64), truth, scores)
    return summary.ovr_score_hist
