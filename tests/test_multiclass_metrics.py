"""Multiclass quality from per-class scores (`scores:`), checked against scikit-learn on the
same raw rows: one-vs-rest, macro and prevalence-weighted ROC AUC, log loss, Brier, per-class
ECE, and the label-free estimates (multiclass CBPE) against the metrics realised once labels
come (NannyML's multiclass CBPE on the same rows is compared in its own environment, by
`tests/test_nannyml_multiclass.py`).

Tolerances, each stated where it is asserted: binned AUC within 0.005 of sklearn (as binary:
scores sharing one of 100 bins count as ties), log loss and Brier exact (1e-12, per-row sums),
ECE within 0.005 of a numpy ECE on the raw rows (half a score bin), estimates within 0.02 of
the realised metrics on 20 000 rows (as binary).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from detectors.registry import METRICS
from monitor.config.semantics import objective_problems
from monitor.core.objectives import parse_objective
from monitor.ingest.pushdown_source import problems as pushdown_problems
from monitor.ingest.summarize import summarize_predictions
from tests.builders import build_config
from tests.multiclass_data import (
    CLASSES,
    COLUMNS,
    MULTICLASS,
    class_scores,
    labelled_arrays,
    multiclass_rows,
    prediction_batch,
    reference_of,
)
from tests.test_multiclass_engine import model_config
from tests.test_multiclass_summaries import summarise
from tests.test_quality_metrics import HOUR, NOW, Values, compute, numpy_ece, value, window_of

SORTED = sorted(CLASSES)
ORDER = np.argsort(CLASSES)  # sklearn reads probability columns in the classes' sorted order


def ranking_values(rows: pd.DataFrame) -> Values:
    return compute(window_of([summarise(rows)]), reference_of(rows), "ranking")


def test_one_vs_rest_macro_and_weighted_roc_auc_match_sklearn() -> None:
    """ROC AUC of each class against the rest (`roc_auc`, feature `class=X`) is within 0.005
    of sklearn's `roc_auc_score(y == X, p_X)`, and `roc_auc` / `macro_roc_auc` and
    `weighted_roc_auc` within 0.005 of `roc_auc_score(multi_class="ovr", average="macro" |
    "weighted")`: histograms of 100 bins, ties within a bin counted half, as the binary AUC.
    Observed on 12 000 labelled rows: at most 0.00017."""
    rng = np.random.default_rng(51)
    rows = multiclass_rows(rng, 15_000)
    values = ranking_values(rows)
    truth, probs = labelled_arrays(rows)
    for j, cls in enumerate(CLASSES):
        want = skm.roc_auc_score(truth == cls, probs[:, j])
        assert abs(value(values, "roc_auc", f"class={cls}") - want) < 0.005
        mv = values[("roc_auc", f"class={cls}")]
        assert mv.n == len(truth) and mv.ci is not None and mv.ci[0] < want < mv.ci[1]
    for average, metrics in {
        "macro": ("roc_auc", "macro_roc_auc"),
        "weighted": ("weighted_roc_auc",),
    }.items():
        want = skm.roc_auc_score(
            truth, probs[:, ORDER], multi_class="ovr", average=average, labels=SORTED
        )
        for metric in metrics:
            assert abs(value(values, metric) - want) < 0.005, metric
            mv = values[(metric, None)]
            assert mv.ci is not None and mv.ci[0] < want < mv.ci[1]
            assert mv.n == len(truth)


def test_weighted_roc_auc_weighs_classes_by_prevalence() -> None:
    """With one class rare (5% of traffic) and ranked worse, the weighted mean sits near
    the common classes' AUC and the macro mean does not; both still match sklearn (0.005)."""
    rng = np.random.default_rng(52)
    rows = multiclass_rows(rng, 12_000, shift=-2.5, sharpness=1.4)
    values = ranking_values(rows)
    truth, probs = labelled_arrays(rows)
    assert (truth == "bird").mean() < 0.1
    macro = skm.roc_auc_score(truth, probs[:, ORDER], multi_class="ovr", labels=SORTED)
    weighted = skm.roc_auc_score(
        truth, probs[:, ORDER], multi_class="ovr", average="weighted", labels=SORTED
    )
    assert abs(macro - weighted) > 0.005  # the two averages differ on this stream
    assert abs(value(values, "macro_roc_auc") - macro) < 0.005
    assert abs(value(values, "weighted_roc_auc") - weighted) < 0.005


def test_log_loss_brier_and_per_class_ece_match_sklearn_and_numpy() -> None:
    """Multiclass log loss and Brier (summed over classes, one-hot truth) equal sklearn's
    `log_loss` and `brier_score_loss` to 1e-12, with a mean interval that holds them; ECE per
    class (one against the rest) is within 0.005 of a numpy ECE on the raw rows, and `ece` is
    the mean of the classes' ECE."""
    rng = np.random.default_rng(53)
    rows = multiclass_rows(rng, 8000)
    values = ranking_values(rows)
    truth, probs = labelled_arrays(rows)
    expected = {
        "log_loss": skm.log_loss(truth, probs[:, ORDER], labels=SORTED),
        "brier": skm.brier_score_loss(truth, probs[:, ORDER], labels=SORTED),
    }
    for metric, want in expected.items():
        assert value(values, metric) == pytest.approx(want, abs=1e-12)
        mv = values[(metric, None)]
        assert mv.n == len(truth) and mv.ci is not None and mv.ci[0] < want < mv.ci[1]
    eces = []
    for j, cls in enumerate(CLASSES):
        want = numpy_ece((truth == cls).astype(float), probs[:, j])
        assert abs(value(values, "ece", f"class={cls}") - want) <= 0.005
        eces.append(value(values, "ece", f"class={cls}"))
    assert value(values, "ece") == pytest.approx(np.mean(eces), abs=1e-12)
    assert values[("pr_auc", None)].value is None  # average precision stays binary


def test_without_a_logged_decision_the_most_likely_class_is_decided() -> None:
    """A multiclass model with `scores:` and no `prediction:` column is decided by its highest
    score: accuracy and per-class precision equal sklearn's on the argmax (exact, 1e-12), and
    the histograms the estimates read split each class's scores by the same decision."""
    rng = np.random.default_rng(55)
    rows = multiclass_rows(rng, 3000).drop(columns="decision")
    window = window_of([summarise(rows)])
    values = compute(window, None, "classification")
    truth, probs = labelled_arrays(rows)
    decided = np.array(CLASSES)[probs.argmax(axis=1)]
    assert value(values, "accuracy") == pytest.approx(skm.accuracy_score(truth, decided), abs=1e-12)
    precision = skm.precision_score(truth, decided, labels=CLASSES, average=None)
    for cls, want in zip(CLASSES, precision, strict=True):
        assert value(values, "precision", f"class={cls}") == pytest.approx(want, abs=1e-12)
    everyone = np.array(CLASSES)[class_scores(rows).to_numpy().argmax(axis=1)]
    for cls in CLASSES:  # the estimates' split of each class's scores follows the same rule
        assert sum(window.summary.scores_hist[f"{cls}|1"]) == int((everyone == cls).sum())


def realised(rows: pd.DataFrame) -> dict[tuple[str, str | None], float]:
    """Accuracy and one-vs-rest ROC AUC once every label is known (sklearn)."""
    truth = rows["label"].to_numpy()
    probs = rows[[COLUMNS[c] for c in CLASSES]].to_numpy()
    out: dict[tuple[str, str | None], float] = {
        ("estimated.accuracy", None): skm.accuracy_score(truth, rows["decision"].to_numpy()),
        ("estimated.roc_auc", None): skm.roc_auc_score(
            truth, probs[:, ORDER], multi_class="ovr", labels=SORTED
        ),
    }
    for j, cls in enumerate(CLASSES):
        out[("estimated.roc_auc", f"class={cls}")] = skm.roc_auc_score(truth == cls, probs[:, j])
    return out


def test_multiclass_cbpe_tracks_realised_quality_of_a_calibrated_model() -> None:
    """Multiclass CBPE on a window without labels: estimated accuracy and one-vs-rest ROC AUC
    per class and macro are within 0.02 of what sklearn computes once the labels (drawn from
    the scores) come; 0.02 as binary CBPE (sampling noise of the realised metrics on 20 000
    rows plus the calibration maps' error from a 20 000-row reference). When the model grows
    unsure (logits scaled by 0.4) and traffic moves to another class, the estimates fall
    with the realised metrics and agree within 0.02. Observed: at most 0.0083 (ROC AUC
    of one class), 0.0073 for accuracy."""
    rng = np.random.default_rng(54)
    reference = reference_of(multiclass_rows(rng, 20_000, labelled=1.0))
    estimates: dict[str, float] = {}
    for name, shape in {"as trained": {}, "unsure": {"sharpness": 0.4, "shift": 1.0}}.items():
        rows = multiclass_rows(rng, 20_000, labelled=1.0, **shape)
        predictions = summarize_predictions(
            prediction_batch(rows), reference, MULTICLASS, 0.5, HOUR, NOW
        )
        window = window_of(list(predictions.values()))
        assert window.summary.n_labelled == 0
        values = compute(window, reference, "estimated")
        for key, want in realised(rows).items():
            got = values[key]
            assert got.value is not None and abs(got.value - want) < 0.02, (name, key)
            assert got.ci is not None and got.ci[0] <= got.value <= got.ci[1]
            assert all(type(bound) is float for bound in got.ci)  # stored as JSON
            assert got.n == 20_000
        estimates[name] = value(values, "estimated.accuracy")
        assert values[("estimated.precision", None)].value is None
    assert estimates["as trained"] - estimates["unsure"] > 0.1


def test_multiclass_metrics_need_per_class_scores_in_the_config() -> None:
    """With `scores:` the multiclass quality and estimate SLOs pass `config check`; without
    it each is refused with a message that says to add `scores:`; a multiclass Brier
    objective may be above 1 (it runs to 2); push-down refuses multiclass estimates."""
    slos = [
        {"metric": m, "window": "24h", "objective": ">= 0.8"}
        for m in ("roc_auc", "macro_roc_auc", "weighted_roc_auc", "estimated.roc_auc")
    ] + [{"metric": "brier", "window": "24h", "objective": "< 1.5"}]
    config = build_config(model_config("sqlite:///s.db", "sqlite:///src.db", slos))
    model = config.models["m"]
    assert list(model.predictions.scores) == CLASSES
    without = model_config("sqlite:///s.db", "sqlite:///src.db", slos)
    del without["models"]["m"]["predictions"]["scores"]
    with pytest.raises(Exception) as caught:
        build_config(without)
    messages = [p.message for p in caught.value.problems]  # type: ignore[attr-defined]
    assert len(messages) == len(slos)
    assert all("needs a score per class: add 'scores:'" in m for m in messages)
    brier = METRICS["brier"][0]
    slo = model.slos[-1].model_copy(update={"objective": parse_objective("< 2.5")})
    assert list(objective_problems(brier, slo, MULTICLASS)) == [
        "2.5 is outside the range of brier (between 0 and 2)"
    ]
    found = pushdown_problems(model, "postgresql", {})
    assert any("estimated.roc_auc of a multiclass model" in p for p in found), found
    plain = model.model_copy(update={"slos": model.slos[:3]})
    assert pushdown_problems(plain, "postgresql", {}) == []
