"""Hints where the whole-model split does not apply as is: a `segment_by` SLO breaching in one
segment (its place in the column's split and the rest of the column, checked against
scikit-learn on the rows), and multiclass quality SLOs (the accuracy split, labelled as a
stand-in, with per-slice accuracies checked against the rows); and, through a real tick on a
real store, a segment_by accuracy SLO whose NL segment breaks names NL and says the other
countries held."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score
from sqlalchemy import select

from alerts.payloads import alert_from_json
from detectors.base import WindowSummary
from detectors.root_cause import explain
from detectors.root_cause_scope import (
    NOT_INSIDE,
    segment_hints,
    segment_key,
    split_for,
    stand_in,
)
from monitor.config.models import SLOConfig
from monitor.core.summaries import merge_all
from monitor.core.values import MetricValue
from monitor.engine.root_cause import explain_values
from monitor.engine.runtime import Runtime, open_runtime
from monitor.engine.tick import tick
from monitor.ingest.batches import LabelBatch
from monitor.ingest.fit import fit_reference
from monitor.ingest.summarize_labels import summarize_labels
from monitor.store.tables import Incident
from tests.builders import (
    T0,
    add_labels,
    add_predictions,
    build_config,
    config_dict,
    create_source,
    hourly,
)
from tests.test_root_cause import HOUR, NOW, _frame, _summary

DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def reference() -> object:
    rng = np.random.default_rng(7)
    return fit_reference(_frame(rng, 5000, 0.1, 2.5), ["x", "colour"], [], "fp")


def test_segment_keys_match_whole_values_only() -> None:
    keys = ["country=NL", "country=NL/x", "country=N", "channel=NL"]
    assert segment_key("country=NL", "country", keys) == "country=NL"
    assert segment_key("country=NL/x/class=2", "country", keys) == "country=NL/x"
    assert segment_key("country=NL/class=2", "country", keys) == "country=NL"
    assert segment_key("country=NLX", "country", keys) is None
    assert segment_key("channel=NL", "country", keys) is None


def test_a_segment_that_lost_auc_is_placed_in_its_column(reference: object) -> None:
    rng = np.random.default_rng(3)
    frame_before, frame_now = _frame(rng, 20000, 0.1, 2.5), _frame(rng, 20000, 0.1, 0.4)
    before, now = _summary(frame_before, reference), _summary(frame_now, reference)
    split = split_for("roc_auc", before, now)
    assert split == "roc_auc"
    attributions = explain(split, before, now, reference)  # type: ignore[arg-type]
    lines, rows = segment_hints(attributions, split, "region=EU", before, now)
    assert lines[0].startswith("region = EU: ")
    assert "(mostly performance)" in lines[0]
    share = float(lines[0].split("explains ")[1].split("%")[0]) / 100
    assert share >= 0.8
    # The rest of the column held: its pooled AUC (from 100-bin histograms) is sklearn's on
    # the other rows, within the bins' tie error, and about the same before and now.
    rest = [
        roc_auc_score(f["@label"].astype(int)[f.region != "EU"], f["@score"][f.region != "EU"])
        for f in (frame_before, frame_now)
    ]
    text = lines[1].split("together: roc_auc ")[1]
    shown = [float(x) for x in text.split(";")[0].split(" → ")]
    assert shown == pytest.approx(rest, abs=0.01)
    assert abs(shown[1] - shown[0]) < 0.02
    assert NOT_INSIDE in lines[1]
    # The table is the column's whole split: every region value, and nothing else.
    assert {r["dimension"] for r in rows} == {"region"}
    assert {r["slice"] for r in rows} == {"EU", "US", "APAC"}
    assert sum(r["share_of_change"] for r in rows) == pytest.approx(1.0)


def test_a_pooled_segment_says_so(reference: object) -> None:
    rng = np.random.default_rng(5)
    before = _summary(_frame(rng, 4000, 0.003, 2.5), reference)  # ~12 EU rows: pooled
    now = _summary(_frame(rng, 4000, 0.003, 0.1), reference)
    attributions = explain("accuracy", before, now, reference)  # type: ignore[arg-type]
    lines, rows = segment_hints(attributions, "accuracy", "region=EU", before, now)
    assert lines == [
        "region = EU: too few labelled rows on one side to rank it alone"
        " (pooled as (other) in the region split)"
    ]
    assert "EU" not in {r["slice"] for r in rows}


def _multiclass(rng: np.random.Generator, n: int, bad: float) -> pd.DataFrame:
    """Three classes; in region EU the decision is wrong with probability `bad`, elsewhere
    with probability 0.1."""
    region = np.where(rng.random(n) < 0.2, "EU", rng.choice(["US", "APAC"], n))
    truth = rng.choice(["a", "b", "c"], n)
    wrong = rng.random(n) < np.where(region == "EU", bad, 0.1)
    shifted = np.array([{"a": "b", "b": "c", "c": "a"}[t] for t in truth])
    return pd.DataFrame(
        {
            "region": region,
            "x": rng.normal(0, 1, n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "@label": truth,
            "@decision": np.where(wrong, shifted, truth),
        }
    )


def _multiclass_summary(frame: pd.DataFrame, reference: object) -> Any:
    n = len(frame)
    times = pd.Series(pd.Timestamp(NOW - HOUR), index=frame.index).dt.tz_convert("UTC")
    batch = LabelBatch(
        ids=pd.Series(np.arange(n)),
        labeled_at=times,
        label=frame["@label"],
        predicted_at=times,
        score=None,
        decision=frame["@decision"],
        segments=frame[["region"]],
        features=frame[["x", "colour"]],
    )
    buckets = summarize_labels(batch, "multiclass_classification", 0.5, HOUR, NOW, None, reference)  # type: ignore[arg-type]
    summary = merge_all(buckets.values())
    for seg in summary.segments.values():
        seg.n = seg.n_labelled
    return summary


def test_multiclass_auc_gets_the_accuracy_split_labelled_as_such() -> None:
    rng = np.random.default_rng(11)
    fitted = _multiclass(rng, 3000, 0.1)
    reference = fit_reference(
        fitted.drop(columns=["@decision"]), ["x", "colour"], ["colour"], "fp",
        "multiclass_classification",
    )  # fmt: skip
    frame_before, frame_now = _multiclass(rng, 6000, 0.1), _multiclass(rng, 6000, 0.6)
    before = _multiclass_summary(frame_before, reference)
    now = _multiclass_summary(frame_now, reference)
    assert not now.class_score_hist  # no binary score histograms: no AUC split
    for metric in ("macro_roc_auc", "weighted_roc_auc", "roc_auc", "log_loss"):
        assert split_for(metric, before, now) == "accuracy"
        assert stand_in(metric, "accuracy") == (
            f" [accuracy split: {metric} has no per-slice scores to split]"
        )
    assert stand_in("precision", "accuracy") == ""  # a threshold metric: accuracy is its split
    assert split_for("mae", before, now) is None
    attributions = explain("accuracy", before, now, reference)  # type: ignore[arg-type]
    region = next(a for a in attributions if a.slices[0].dimension == "region")
    eu = next(s for s in region.slices if s.value == "EU")
    expected = [
        accuracy_score(f["@label"][f.region == "EU"], f["@decision"][f.region == "EU"])
        for f in (frame_before, frame_now)
    ]
    assert [eu.metric_before, eu.metric_now] == pytest.approx(expected, abs=1e-12)
    assert region.now == pytest.approx(accuracy_score(frame_now["@label"], frame_now["@decision"]))
    assert {a.slices[0].dimension for a in attributions} >= {"region", "x", "colour"}

    # Through the engine's stage: the breaching macro AUC value gets lines, each labelled.
    reference = replace(reference, quality=before.to_json())
    slo = SLOConfig.model_validate(
        {"metric": "macro_roc_auc", "objective": ">= 0.9", "window": "24h"}
    )
    window = WindowSummary("24h", NOW - DAY, NOW, now, None)
    value = MetricValue("macro_roc_auc", 0.7, 6000, "24h")
    [explained] = explain_values(
        cast(Runtime, None), "m", reference, {slo.window: window}, [(slo, value)]
    )
    assert explained.root_cause
    assert explained.root_cause[0].startswith("region = EU: ")
    assert all(
        line.endswith("[accuracy split: macro_roc_auc has no per-slice scores to split]")
        for line in explained.root_cause
    )
    assert explained.root_cause_table[0]["metric"] == "accuracy"


def test_a_segment_by_breach_names_its_segment_on_a_real_tick(db_url: str, tmp_path: Path) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    source = create_source(source_url)
    countries = ["DE", "FR", "NL"]
    day1 = hourly(T0, 300, timedelta(minutes=4))
    day2 = hourly(T0 + 1.25 * DAY + timedelta(hours=2), 280, timedelta(minutes=4))
    ids1 = add_predictions(source, 0, day1, score=0.9, countries=countries)
    ids2 = add_predictions(source, 1000, day2, score=0.9, countries=countries)
    labels = [(i, ts + timedelta(minutes=1), 1) for i, ts in zip(ids1, day1, strict=True)]
    labels += [  # on day 2 every NL decision is wrong, the others stay right
        (i, ts + timedelta(minutes=1), 0 if countries[k % 3] == "NL" else 1)
        for k, (i, ts) in enumerate(zip(ids2, day2, strict=True))
    ]
    add_labels(source, labels)
    data = config_dict(db_url, source_url)
    model = data["models"]["m"]
    model["predictions"]["segments"] = ["country"]
    model["slos"] = [
        {
            "metric": "accuracy",
            "window": "24h",
            "objective": ">= 0.9",
            "segment_by": "country",
            "min_samples": 20,
            "resolve_after": 1,
        }
    ]
    rt = open_runtime(build_config(data), tmp_path)
    try:
        assert not tick(rt, "m", T0 + DAY).breached
        assert tick(rt, "m", T0 + 2.25 * DAY).breached
        with rt.sessions() as session:
            [incident] = list(session.scalars(select(Incident)))
            stored, feature = dict(incident.alert), incident.feature
    finally:
        rt.close()
    assert feature == "country=NL"
    alert = alert_from_json(stored)
    assert len(alert.root_cause) == 2, alert.root_cause
    assert alert.root_cause[0].startswith(
        "country = NL: 33% → 33% of traffic, accuracy 1.00 → 0.00, explains 100% of the drop"
    )
    assert alert.root_cause[1].startswith(
        "other country values together: accuracy 1.00 → 1.00; the model as a whole 1.00 → 0.67"
    )
    assert {(r["dimension"], r["slice"]) for r in alert.root_cause_table} == {
        ("country", c) for c in countries
    }


def test_no_split_of_the_column_no_lines(reference: object) -> None:
    """Without labelled rows to compare (say, an unlabelled reference and no earlier
    window), a segment gets no hints, as a whole-model value does."""
    rng = np.random.default_rng(9)
    now = _summary(_frame(rng, 2000, 0.1, 0.4), reference)
    assert segment_hints([], "accuracy", "region=EU", merge_all([]), now) == ([], [])
