"""A simulated three-class model with one probability column per class, for the multiclass
tests: scores are a softmax of random logits and labels are drawn from those scores, so the
model is calibrated by construction (what the label-free estimates assume)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from monitor.core.reference import CLASS_SCORE_PREFIX, LABEL_COLUMN, ReferenceSummary
from monitor.ingest.batches import LabelBatch, PredictionBatch
from monitor.ingest.fit import fit_reference
from tests.test_quality_metrics import T0
from tests.test_quality_metrics import label_batch as binary_label_batch
from tests.test_quality_metrics import prediction_batch as binary_prediction_batch

CLASSES = ["cat", "dog", "bird"]
COLUMNS = {cls: f"p_{cls}" for cls in CLASSES}
MULTICLASS = "multiclass_classification"


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def multiclass_rows(
    rng: np.random.Generator,
    n: int,
    *,
    labelled: float = 0.8,
    shift: float = 0.0,
    sharpness: float = 1.0,
) -> pd.DataFrame:
    """Raw rows of one day: id, ts, labeled_at, label (None = not labelled yet), decision
    (the most likely class), score (its probability) and `p_<class>` per class. `shift`
    moves traffic towards the last class; `sharpness` scales the logits (how sure the model is)."""
    logits = rng.normal(size=(n, len(CLASSES))) * np.array([1.6, 1.2, 0.9]) * sharpness
    logits[:, -1] += shift
    probs = softmax(logits + np.array([0.3, 0.0, -0.4]))
    drawn = (rng.uniform(size=(n, 1)) > probs.cumsum(axis=1)).sum(axis=1)
    truth = np.array(CLASSES, dtype=object)[np.minimum(drawn, len(CLASSES) - 1)]
    truth[rng.uniform(size=n) > labelled] = None
    ts = pd.Timestamp(T0) + pd.to_timedelta(rng.uniform(0, 23 * 3600, n), unit="s").floor("us")
    frame = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "ts": ts,
            "labeled_at": ts + pd.to_timedelta(rng.uniform(3600, 36000, n), unit="s").floor("us"),
            "label": truth,
            "decision": np.array(CLASSES, dtype=object)[probs.argmax(axis=1)],
            "score": probs.max(axis=1),
        }
    )
    for j, cls in enumerate(CLASSES):
        frame[COLUMNS[cls]] = probs[:, j]
    return frame


def class_scores(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({cls: rows[COLUMNS[cls]].to_numpy() for cls in CLASSES})


def prediction_batch(rows: pd.DataFrame) -> PredictionBatch:
    batch = binary_prediction_batch(rows, [])
    return replace(batch, class_scores=class_scores(rows.reset_index(drop=True)))


def label_batch(rows: pd.DataFrame) -> LabelBatch:
    labelled = rows[rows["label"].notna()].reset_index(drop=True)
    return replace(binary_label_batch(rows), class_scores=class_scores(labelled))


def reference_of(rows: pd.DataFrame) -> ReferenceSummary:
    """The reference as `ensure_reference` fits it: `@score:<class>` and `@label` columns."""
    frame = pd.DataFrame({f"{CLASS_SCORE_PREFIX}{c}": rows[COLUMNS[c]] for c in CLASSES})
    if "decision" in rows:
        frame["@prediction"] = rows["decision"]
    frame[LABEL_COLUMN] = rows["label"]
    return fit_reference(frame, [], [], "fp", MULTICLASS)


def labelled_arrays(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(truth as class names, rows x classes probabilities) of the labelled rows."""
    labelled = rows[rows["label"].notna()]
    return labelled["label"].to_numpy(), class_scores(labelled).to_numpy()
