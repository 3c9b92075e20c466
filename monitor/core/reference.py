"""The reference summary: bin edges and counts fitted once on a period the team trusts.

Feature histograms in every bucket are counted on these edges, so drift against the reference
is a comparison of two count vectors, whatever the window length.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

REFERENCE_BINS = 20
"""Features are histogrammed on the reference's 20 quantile bins (ventiles): fine enough for a
binned KS and Wasserstein, and pairs of them give the deciles PSI is conventionally read on."""

SCORE_COLUMN, PREDICTION_COLUMN, LABEL_COLUMN = "@score", "@prediction", "@label"
"""Pseudo-features: the model's score and decision drift like any input, under these names."""
CLASS_SCORE_PREFIX = "@score:"
"""A multiclass model's score of class X is read into a reference frame as `@score:X`."""


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
    ovr_score_hist: dict[str, list[int]] = field(default_factory=dict)
    """Multiclass `scores:`: each class's score among reference rows of the class (`X|1`)
    and of the others (`X|0`), as in `BucketSummary`: what multiclass estimates calibrate on."""
    quality: dict[str, Any] = field(default_factory=dict)
    """The labelled reference rows folded as one bucket (`BucketSummary` JSON): the
    "before" of root-cause hints. Empty when the reference has no labels."""

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
            ovr_score_hist={k: list(v) for k, v in data.get("ovr_score_hist", {}).items()},
            quality=dict(data.get("quality", {})),
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
