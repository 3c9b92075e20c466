"""The reference summary: bin edges and counts fitted once on a period the team trusts.

Feature histograms in every bucket are counted on these edges, so drift against the reference
is a comparison of two count vectors, whatever the window length.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from monitor.summaries import SCORE_BINS

REFERENCE_BINS = 20
"""Features are histogrammed on the reference's 20 quantile bins (ventiles): fine enough for a
binned KS and Wasserstein, and pairs of them give the deciles PSI is conventionally read on."""

SCORE_COLUMN, PREDICTION_COLUMN, LABEL_COLUMN = "@score", "@prediction", "@label"
"""Pseudo-features: the model's score and decision drift like any input, under these names."""


@dataclass(frozen=True)
class NumericReference:
    edges: list[float]
    counts: list[int]
    missing: int
    minimum: float | None
    maximum: float | None
    mean: float | None
    std: float | None
    bin_means: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class CategoricalReference:
    counts: dict[str, int]
    missing: int


@dataclass(frozen=True)
class ReferenceSummary:
    """`class_score_hist` (labelled reference scores per class) calibrates estimated quality."""

    fingerprint: str
    n: int
    numeric: dict[str, NumericReference] = field(default_factory=dict)
    categorical: dict[str, CategoricalReference] = field(default_factory=dict)
    class_score_hist: dict[str, list[int]] = field(default_factory=dict)
    segment_values: dict[str, list[str]] = field(default_factory=dict)
    """Per segment column, the values kept as their own segment; the rest pool as (other)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReferenceSummary:
        return cls(
            fingerprint=data["fingerprint"],
            n=int(data["n"]),
            numeric={k: NumericReference(**v) for k, v in data.get("numeric", {}).items()},
            categorical={
                k: CategoricalReference(**v) for k, v in data.get("categorical", {}).items()
            },
            class_score_hist={k: list(v) for k, v in data.get("class_score_hist", {}).items()},
            segment_values={k: list(v) for k, v in data.get("segment_values", {}).items()},
        )


def fingerprint(spec: dict[str, Any]) -> str:
    """A stable hash of what the reference was fitted from; a changed spec means a refit."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def is_categorical(series: pd.Series, declared: bool) -> bool:
    return declared or not (
        pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    )


def category_strings(series: pd.Series) -> pd.Series:
    """Categories are compared as text so 1, '1' and 1.0 read back from JSON stay one category."""
    values = series.dropna()
    if pd.api.types.is_float_dtype(values) and (values == values.round()).all():
        values = values.astype("int64")
    return values.astype(str)


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
    )


def _top_values(series: pd.Series) -> list[str]:
    """The most frequent values of a segment column, fixed once so pooling is mergeable."""
    from monitor.bucketing import MAX_SEGMENT_VALUES

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
    from monitor.classes import binary_classes, score_bins

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
