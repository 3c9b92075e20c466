"""Class labels and decisions in one canonical form: text, with binary classes as '1'/'0'."""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.core.reference import category_strings
from monitor.core.summaries import SCORE_BINS

_TRUE = {"1", "1.0", "true", "yes", "y", "t"}
_FALSE = {"0", "0.0", "false", "no", "n", "f"}


def binary_classes(values: pd.Series) -> pd.Series:
    """Map 1/0, True/False, 'yes'/'no' to '1'/'0'; anything else becomes NA (counted as bad)."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        numeric = pd.to_numeric(values, errors="coerce")
        out = pd.Series(np.where(numeric != 0, "1", "0"), index=values.index, dtype=object)
        return out.where(numeric.notna())
    text = values.astype(str).str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype=object)
    out[text.isin(_TRUE)] = "1"
    out[text.isin(_FALSE)] = "0"
    return out.where(values.notna())


def class_strings(values: pd.Series, task: str) -> pd.Series:
    if task == "binary_classification":
        return binary_classes(values)
    return category_strings(values).reindex(values.index)


def decisions(
    decision: pd.Series | None,
    score: pd.Series | None,
    task: str,
    threshold: float,
    class_scores: pd.DataFrame | None = None,
) -> pd.Series | None:
    """The predicted class: the logged decision when there is one, else score >= threshold
    (binary) or the class with the highest score (multiclass with `scores:`)."""
    if decision is not None:
        return class_strings(decision, task)
    if class_scores is not None and not class_scores.empty and task == "multiclass_classification":
        return most_likely(class_scores)
    if score is not None and task == "binary_classification":
        out = pd.Series(np.where(score >= threshold, "1", "0"), index=score.index, dtype=object)
        return out.where(score.notna())
    return None


def score_bins(score: np.ndarray) -> np.ndarray:
    """Index of each score's bin among SCORE_BINS equal bins of [0, 1] (clipped)."""
    return np.clip((score * SCORE_BINS).astype(np.int64), 0, SCORE_BINS - 1)


def probabilities(score: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Classification scores must be probabilities: values outside [0, 1] become missing.

    Returns the cleaned scores and which rows were out of range, so the caller counts them
    instead of letting one score of 1e154 turn the Brier score into infinity.
    """
    values = pd.to_numeric(score, errors="coerce")
    outside = ((values < 0) | (values > 1)).to_numpy()
    return values.mask(outside), outside


def most_likely(class_scores: pd.DataFrame) -> pd.Series:
    """Per row, the class (column) with the highest score; missing where any score is
    missing or outside [0, 1], since the highest usable one may not be the model's choice."""
    matrix = np.column_stack(
        [probabilities(class_scores[c])[0].to_numpy(dtype=float) for c in class_scores.columns]
    )
    usable = np.isfinite(matrix).all(axis=1)
    best = np.argmax(np.where(usable[:, None], matrix, 0.0), axis=1)
    names = np.asarray([str(c) for c in class_scores.columns], dtype=object)
    return pd.Series(names[best], index=class_scores.index, dtype=object).where(usable)
