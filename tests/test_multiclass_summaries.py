"""Multiclass summaries: per-class score histograms of every prediction, one-vs-rest
histograms and log loss / Brier sums of labelled rows, checked against numpy and
scikit-learn on the raw rows, merged exactly, stored and read back unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from monitor.core.summaries import SCORE_BINS, BucketSummary, merge_all
from monitor.ingest.summarize import summarize_labels, summarize_predictions
from tests.multiclass_data import (
    CLASSES,
    COLUMNS,
    MULTICLASS,
    label_batch,
    labelled_arrays,
    multiclass_rows,
    prediction_batch,
    reference_of,
)
from tests.test_quality_metrics import HOUR, NOW


def summarise(rows: pd.DataFrame) -> BucketSummary:
    reference = reference_of(rows)
    predictions = summarize_predictions(
        prediction_batch(rows), reference, MULTICLASS, 0.5, HOUR, NOW
    )
    labels = summarize_labels(label_batch(rows), MULTICLASS, 0.5, HOUR, NOW)
    return merge_all([*predictions.values(), *labels.values()])


def bins(values: np.ndarray) -> list[int]:
    """Counts on SCORE_BINS equal bins of [0, 1], the last bin closed (a score of 1.0)."""
    counts, _ = np.histogram(values, bins=SCORE_BINS, range=(0.0, 1.0))
    return [int(c) for c in counts]


def test_per_class_histograms_count_each_class_score() -> None:
    """Each class's score histogram over the predictions decided as the class (`cat|1`) and
    the others (`cat|0`), and over the labelled rows of the class (`cat|1`) and the others
    (`cat|0`), equal numpy's counts of the raw scores exactly."""
    rng = np.random.default_rng(31)
    rows = multiclass_rows(rng, 4000)
    summary = summarise(rows)
    labelled = rows[rows["label"].notna()]
    for cls in CLASSES:
        decided = rows["decision"] == cls
        assert summary.scores_hist[f"{cls}|1"] == bins(rows.loc[decided, COLUMNS[cls]])
        assert summary.scores_hist[f"{cls}|0"] == bins(rows.loc[~decided, COLUMNS[cls]])
        own = labelled["label"] == cls
        assert summary.ovr_score_hist[f"{cls}|1"] == bins(labelled.loc[own, COLUMNS[cls]])
        assert summary.ovr_score_hist[f"{cls}|0"] == bins(labelled.loc[~own, COLUMNS[cls]])
    assert summary.class_score_hist == {}  # the binary histograms stay untouched


def test_log_loss_and_brier_sums_match_sklearn() -> None:
    """Sum of log loss and of Brier score over the labelled rows, divided by their count,
    equal sklearn's multiclass `log_loss` and `brier_score_loss` (mean over rows of the squared
    error against the one-hot truth, summed over classes) to 1e-12: they are exact sums."""
    rng = np.random.default_rng(32)
    rows = multiclass_rows(rng, 3000)
    sums = summarise(rows).prob_sums
    truth, probs = labelled_arrays(rows)
    assert sums["n"] == len(truth)
    order = np.argsort(CLASSES)  # sklearn reads the columns in the classes' sorted order
    labels = sorted(CLASSES)
    expected_loss = skm.log_loss(truth, probs[:, order], labels=labels)
    expected_brier = skm.brier_score_loss(truth, probs[:, order], labels=labels)
    onehot = (truth[:, None] == np.array(CLASSES)[None, :]).astype(float)
    assert expected_brier == pytest.approx(((probs - onehot) ** 2).sum(axis=1).mean(), abs=1e-12)
    assert sums["logloss"] / sums["n"] == pytest.approx(expected_loss, abs=1e-12)
    assert sums["brier"] / sums["n"] == pytest.approx(expected_brier, abs=1e-12)


def test_summaries_of_parts_merge_into_the_summary_of_the_whole() -> None:
    """Rows folded in three parts (labels of the last part arriving separately) and merged in
    any order give the same histograms as folding them at once, and survive the store's JSON."""
    rng = np.random.default_rng(33)
    rows = multiclass_rows(rng, 3000)
    whole = summarise(rows)
    parts = [summarise(rows.iloc[i : i + 1000]) for i in (0, 1000, 2000)]
    for merged in (merge_all(parts), merge_all(parts[::-1])):
        assert merged.scores_hist == whole.scores_hist
        assert merged.ovr_score_hist == whole.ovr_score_hist
        assert merged.prob_sums == pytest.approx(whole.prob_sums, rel=1e-12)
    again = BucketSummary.from_json(whole.to_json())
    assert again.scores_hist == whole.scores_hist
    assert again.ovr_score_hist == whole.ovr_score_hist


def test_unusable_class_scores_are_counted_once_per_row() -> None:
    """A row with a missing class score is counted as `nan_class_score`, one with a score
    outside [0, 1] as `class_score_out_of_range` (once, however many of its scores are bad);
    its usable class scores are still histogrammed, and it has no log loss."""
    rng = np.random.default_rng(34)
    rows = multiclass_rows(rng, 200, labelled=1.0)
    rows.loc[0, "p_cat"] = np.nan
    rows.loc[1, ["p_cat", "p_dog"]] = np.nan
    rows.loc[2, "p_dog"] = 1.7
    rows.loc[3, ["p_dog", "p_bird"]] = [-0.1, np.nan]
    summary = summarise(rows)
    assert summary.bad == {"nan_class_score": 2, "class_score_out_of_range": 2}
    assert sum(sum(summary.scores_hist[f"cat|{flag}"]) for flag in (0, 1)) == 198
    assert sum(sum(summary.scores_hist[f"bird|{flag}"]) for flag in (0, 1)) == 199
    assert summary.prob_sums["n"] == 196
