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

REFERENCE_BINS = 10


@dataclass(frozen=True)
class NumericReference:
    edges: list[float]
    counts: list[int]
    missing: int
    minimum: float | None
    maximum: float | None
    mean: float | None
    std: float | None


@dataclass(frozen=True)
class CategoricalReference:
    counts: dict[str, int]
    missing: int


@dataclass(frozen=True)
class ReferenceSummary:
    fingerprint: str
    n: int
    numeric: dict[str, NumericReference] = field(default_factory=dict)
    categorical: dict[str, CategoricalReference] = field(default_factory=dict)

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
    frame: pd.DataFrame, features: list[str], categorical: list[str], spec_fingerprint: str
) -> ReferenceSummary:
    """Fit decile edges for numeric features and category counts for the others."""
    numeric: dict[str, NumericReference] = {}
    cats: dict[str, CategoricalReference] = {}
    for name in features:
        series = frame[name] if name in frame else pd.Series([], dtype=float)
        if is_categorical(series, name in categorical):
            counts = category_strings(series).value_counts()
            cats[name] = CategoricalReference(
                counts={str(k): int(v) for k, v in counts.items()},
                missing=int(series.isna().sum()),
            )
            continue
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
        present = values[np.isfinite(values)]
        if present.size:
            quantiles = np.quantile(present, np.linspace(0, 1, REFERENCE_BINS + 1)[1:-1])
            edges = np.unique(quantiles)
            counts_arr = np.bincount(
                np.searchsorted(edges, present, side="right"), minlength=edges.size + 1
            )
            numeric[name] = NumericReference(
                edges=[float(e) for e in edges],
                counts=[int(c) for c in counts_arr],
                missing=int(values.size - present.size),
                minimum=float(present.min()),
                maximum=float(present.max()),
                mean=float(present.mean()),
                std=float(present.std(ddof=1)) if present.size > 1 else 0.0,
            )
        else:
            numeric[name] = NumericReference([], [0], int(values.size), None, None, None, None)
    return ReferenceSummary(
        fingerprint=spec_fingerprint, n=len(frame), numeric=numeric, categorical=cats
    )
