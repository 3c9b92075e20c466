"""Root-cause slices: per-slice counts fold and merge exactly, the AUC split adds up and
matches scikit-learn, and the broken segment (or the mix) is named."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from detectors.attribution_auc import SliceScores, attribute_auc
from detectors.root_cause import explain, feature_slices, ranked
from monitor.core.slices import SLICE_SCORE_BINS, numeric_slice_label, score_edges
from monitor.core.summaries import BucketSummary, merge_all
from monitor.ingest.batches import LabelBatch
from monitor.ingest.fit import fit_reference
from monitor.ingest.summarize_labels import summarize_labels

NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _frame(rng: np.random.Generator, n: int, bad_share: float, bad_sep: float) -> pd.DataFrame:
    """Rows with a segment `region` (EU is `bad_share` of traffic, separated by `bad_sep`),
    a numeric feature `x`, a categorical `colour`, a label and a score."""
    region = np.where(rng.random(n) < bad_share, "EU", rng.choice(["US", "APAC"], n))
    y = rng.integers(0, 2, n)
    sep = np.where(region == "EU", bad_sep, 2.5)
    score = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + sep * (y - 0.5))))
    x = rng.normal(0, 1, n)
    x[rng.random(n) < 0.02] = np.nan
    return pd.DataFrame(
        {
            "region": region,
            "x": x,
            "colour": rng.choice(["red", "green", "blue", "grey", "pink", "teal", "gold"], n),
            "@label": y.astype(str),
            "@score": score,
        }
    )


def _summary(frame: pd.DataFrame, reference: object) -> BucketSummary:
    n = len(frame)
    times = pd.Series(pd.Timestamp(NOW - HOUR), index=frame.index).dt.tz_convert("UTC")
    batch = LabelBatch(
        ids=pd.Series(np.arange(n)),
        labeled_at=times,
        label=frame["@label"],
        predicted_at=times,
        score=frame["@score"],
        decision=None,
        segments=frame[["region"]],
        features=frame[["x", "colour"]],
    )
    buckets = summarize_labels(batch, "binary_classification", 0.5, HOUR, NOW, None, reference)  # type: ignore[arg-type]
    summary = merge_all(buckets.values())
    # the traffic side, as the prediction fold counts it
    summary.segments = {
        k: BucketSummary(**{**v.__dict__, "n": v.n_labelled}) for k, v in summary.segments.items()
    }
    return summary


@pytest.fixture(scope="module")
def reference() -> object:
    rng = np.random.default_rng(7)
    return fit_reference(_frame(rng, 5000, 0.1, 2.5), ["x", "colour"], [], "fp")


def test_slice_counts_match_a_groupby_and_merge_exactly(reference: object) -> None:
    rng = np.random.default_rng(1)
    frame = _frame(rng, 4000, 0.1, 2.5)
    whole = _summary(frame, reference)
    halves = merge_all(
        [_summary(frame.iloc[:1500], reference), _summary(frame.iloc[1500:], reference)]
    )
    assert halves.slice_labels == whole.slice_labels
    assert not whole.slices  # binary with a score: the compact layout only
    assert BucketSummary.from_json(whole.to_json()).slice_labels == whole.slice_labels
    colour = feature_slices(whole, reference)["colour"]  # type: ignore[arg-type]
    expected = frame["colour"].value_counts()
    kept = [k for k in colour if k not in ("(other)", "(missing)")]
    assert len(kept) == 5
    for key in kept:
        assert colour[key].labelled == expected[key]
    assert colour["(other)"].labelled == expected.drop(kept).sum()
    assert colour["(missing)"].labelled == 0
    x = feature_slices(whole, reference)["x"]  # type: ignore[arg-type]
    assert x["(missing)"].labelled == frame["x"].isna().sum()
    assert sum(s.labelled for s in x.values()) == len(frame)
    positives = frame.loc[frame["colour"] == kept[0], "@label"].eq("1").sum()
    assert sum(colour[kept[0]].positives) == positives
    assert len(colour[kept[0]].positives) == SLICE_SCORE_BINS
    assert numeric_slice_label([1.0, 2.0, 3.0, 4.0, 5.0], 1) == "≥ 4"
    ventiles = [i / 20 for i in range(1, 20)]
    assert score_edges(ventiles) == [0.35, 0.65]  # tertiles, to the nearest ventile
    assert score_edges(ventiles, 4) == [0.25, 0.5, 0.75]  # old buckets' quartiles
    assert score_edges(None) == [1 / 3, 2 / 3]


@st.composite
def histograms(draw: st.DrawFn) -> tuple[dict[str, SliceScores], dict[str, SliceScores]]:
    bins = draw(st.integers(1, 6))
    names = [f"s{i}" for i in range(draw(st.integers(1, 5)))]

    def side() -> dict[str, SliceScores]:
        out = {}
        for name in draw(st.lists(st.sampled_from(names), min_size=1, unique=True)):
            neg = tuple(draw(st.lists(st.integers(0, 40), min_size=bins, max_size=bins)))
            pos = tuple(draw(st.lists(st.integers(0, 40), min_size=bins, max_size=bins)))
            out[name] = SliceScores(sum(neg) + sum(pos) + draw(st.integers(0, 9)), neg, pos)
        return out

    return side(), side()


@settings(max_examples=120, deadline=None)
@given(histograms(), st.integers(1, 60))
def test_the_auc_split_adds_up_to_the_change(
    data: tuple[dict[str, SliceScores], dict[str, SliceScores]], min_count: int
) -> None:
    before, now = data
    classes = [
        (sum(sum(s.positives) for s in d.values()), sum(sum(s.negatives) for s in d.values()))
        for d in data
    ]
    if min(min(c) for c in classes) == 0:
        with pytest.raises(ValueError):
            attribute_auc("seg", before, now, min_count=min_count)
        return
    result = attribute_auc("seg", before, now, min_count=min_count)
    assert abs(sum(s.mix + s.performance for s in result.slices) - result.change) <= 1e-12
    # the total is the AUC of the pooled rows (scikit-learn on the bin indices)
    parts = [(c, h) for sl in before.values() for c, h in ((0, sl.negatives), (1, sl.positives))]
    y = np.concatenate([np.repeat(c, sum(h)) for c, h in parts])
    s = np.concatenate([np.repeat(np.arange(len(h)), h) for _, h in parts])
    assert result.before == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_a_segment_that_lost_auc_ranks_first_with_most_of_the_drop(reference: object) -> None:
    rng = np.random.default_rng(3)
    before = _summary(_frame(rng, 20000, 0.1, 2.5), reference)
    now = _summary(_frame(rng, 20000, 0.1, 0.4), reference)
    attributions = explain("roc_auc", before, now, reference)  # type: ignore[arg-type]
    top, whole = ranked(attributions)[0]
    assert (top.dimension, top.value) == ("region", "EU")
    assert top.contribution / whole.change >= 0.8
    assert abs(top.performance) > abs(top.mix)
    accuracy = explain("accuracy", before, now, reference)  # type: ignore[arg-type]
    assert (ranked(accuracy)[0][0].dimension, ranked(accuracy)[0][0].value) == ("region", "EU")


def test_a_change_of_mix_alone_is_called_mix(reference: object) -> None:
    rng = np.random.default_rng(4)
    before = _summary(_frame(rng, 20000, 0.1, 1.0), reference)
    now = _summary(_frame(rng, 20000, 0.5, 1.0), reference)
    attributions = [
        a for a in explain("roc_auc", before, now, reference) if a.slices[0].dimension == "region"
    ]  # type: ignore[arg-type]
    (region,) = attributions
    mix = sum(s.mix for s in region.slices)
    assert region.change < 0
    assert mix / region.change >= 0.8


def test_the_labelled_reference_is_folded_as_one_bucket(reference: object) -> None:
    from monitor.ingest.fit_quality import quality_summary

    rng = np.random.default_rng(5)
    frame = _frame(rng, 3000, 0.1, 2.5)
    frame.loc[:99, "@label"] = None
    data = quality_summary(
        frame, reference, ["x", "colour"], ("region",), "binary_classification", 0.5
    )  # type: ignore[arg-type]
    summary = BucketSummary.from_json(data)
    assert (summary.n, summary.n_labelled) == (3000, 2900)
    assert summary.segments["region=EU"].n == (frame["region"] == "EU").sum()
    slices = feature_slices(summary, reference)["colour"]  # type: ignore[arg-type]
    assert sum(c.labelled for c in slices.values()) == 2900
    assert not summary.bad
    assert (
        quality_summary(
            frame.drop(columns="@label"), reference, ["x"], (), "binary_classification", 0.5
        )
        == {}
    )  # type: ignore[arg-type]


def test_score_drift_is_put_on_the_input_that_moved_it() -> None:
    from detectors.root_cause import score_drivers
    from monitor.ingest.fit_quality import quality_summary

    rng = np.random.default_rng(8)
    ref = _frame(rng, 6000, 0.1, 2.5)
    ref["@score"] = 1 / (1 + np.exp(-ref["x"].fillna(0)))  # the score follows x
    reference = fit_reference(ref, ["x", "colour"], [], "fp")
    quality = quality_summary(ref, reference, ["x", "colour"], (), "binary_classification", 0.5)
    reference = replace(reference, quality=quality)
    now = _frame(rng, 6000, 0.1, 2.5)
    now["x"] = now["x"] + 1.0  # x drifts up, colour does not move
    window = quality_summary(now, reference, ["x", "colour"], (), "binary_classification", 0.5)
    lines = score_drivers(BucketSummary.from_json(window), reference)
    assert lines[0].startswith("x: its shift alone moves the mean score by +0.")
    assert all(not line.startswith("colour") for line in lines[:1])
