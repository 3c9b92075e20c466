"""Label-free root-cause hints: an estimated metric's change is split over the slices whose
scores moved (segment values and feature slices), the parts add up to the whole, and the
compact per-slice storage loads, merges and reads old buckets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.attribution import format_line
from detectors.estimated import calibration_map
from detectors.ranking import roc_auc_from_hists
from detectors.root_cause import explain, feature_slices, ranked
from detectors.root_cause_estimated import explain_estimated, has_score_slices
from monitor.core.reference import ReferenceSummary
from monitor.core.slices import LABEL_WIDTH, SLICE_SCORE_BINS, slice_keys
from monitor.core.summaries import SCORE_BINS, BucketSummary, merge_all
from monitor.ingest.batches import PredictionBatch
from monitor.ingest.fit import fit_reference
from monitor.ingest.fit_quality import quality_summary
from monitor.ingest.summarize import summarize_predictions

NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
TASK = "binary_classification"


def _frame(
    rng: np.random.Generator, n: int, eu_sep: float = 2.5, red_sep: float = 2.5
) -> pd.DataFrame:
    """Rows with a segment `region` (EU: 10%), a numeric `x`, a categorical `colour`; the
    score separates the classes by 2.5, by `eu_sep` in EU and `red_sep` for red rows."""
    region = np.where(rng.random(n) < 0.1, "EU", rng.choice(["US", "APAC"], n))
    colour = rng.choice(["red", "green", "blue", "grey", "pink", "teal", "gold"], n)
    y = rng.integers(0, 2, n)
    sep = np.where(region == "EU", eu_sep, np.where(colour == "red", red_sep, 2.5))
    score = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + sep * (y - 0.5))))
    return pd.DataFrame(
        {
            "region": region,
            "x": rng.normal(0, 1, n),
            "colour": colour,
            "@label": y.astype(str),
            "@score": score,
            "@prediction": (score >= 0.5).astype(int).astype(str),
        }
    )


def _predictions(frame: pd.DataFrame, reference: ReferenceSummary) -> BucketSummary:
    """The prediction part only: no label in the window."""
    at = pd.Series(pd.Timestamp(NOW - HOUR), index=frame.index)
    batch = PredictionBatch(
        pd.Series(np.arange(len(frame))),
        at,
        frame["@score"],
        frame["@prediction"],
        frame[["x", "colour"]],
        frame[["region"]],
    )
    return merge_all(summarize_predictions(batch, reference, TASK, 0.5, HOUR, NOW).values())


@pytest.fixture(scope="module")
def fitted() -> tuple[ReferenceSummary, BucketSummary]:
    frame = _frame(np.random.default_rng(7), 20000)
    reference = fit_reference(frame, ["x", "colour"], [], "fp")
    quality = quality_summary(frame, reference, ["x", "colour"], ("region",), TASK, 0.5)
    return reference, BucketSummary.from_json(quality)


@pytest.mark.parametrize("metric", ["estimated.roc_auc", "estimated.accuracy"])
def test_a_segment_whose_scores_moved_ranks_first(
    fitted: tuple[ReferenceSummary, BucketSummary], metric: str
) -> None:
    reference, before = fitted
    assert has_score_slices(before)
    now = _predictions(_frame(np.random.default_rng(1), 20000, eu_sep=0.3), reference)
    assert now.n_labelled == 0
    attributions = explain_estimated(metric, before, now, reference, 0.5)
    top, whole = ranked(attributions)[0]
    assert (top.dimension, top.value) == ("region", "EU")
    assert top.contribution / whole.change >= 0.8
    assert abs(top.performance) > abs(top.mix)
    assert whole.change < 0
    line = format_line(top, whole)
    assert line.startswith("region = EU: 10% → 10% of traffic, estimated ")
    # the segment split's totals are the estimator's own values (same 100-bin calibration)
    region = next(a for a in attributions if a.slices[0].dimension == "region")
    c = calibration_map(reference)
    assert c is not None
    for total, summary in ((region.before, before), (region.now, now)):
        counts = np.asarray(summary.score_hist, dtype=float)
        if metric == "estimated.roc_auc":
            expected = roc_auc_from_hists(counts * c, counts * (1 - c))
        else:
            decided = np.arange(SCORE_BINS) / SCORE_BINS >= 0.5 - 1e-12
            expected = float(counts @ np.where(decided, c, 1 - c) / counts.sum())
        assert total == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("metric", ["estimated.roc_auc", "estimated.accuracy"])
def test_a_feature_slice_whose_scores_moved_ranks_first(
    fitted: tuple[ReferenceSummary, BucketSummary], metric: str
) -> None:
    reference, before = fitted
    now = _predictions(_frame(np.random.default_rng(2), 20000, red_sep=0.2), reference)
    now.segments = {}  # features only
    attributions = explain_estimated(metric, before, now, reference, 0.5)
    top, whole = ranked(attributions)[0]
    assert (top.dimension, top.value) == ("colour", "red")
    assert top.contribution / whole.change >= 0.8
    assert abs(top.performance) > abs(top.mix)


def test_no_hints_without_scores_or_for_other_metrics(
    fitted: tuple[ReferenceSummary, BucketSummary],
) -> None:
    reference, before = fitted
    now = _predictions(_frame(np.random.default_rng(3), 3000, eu_sep=0.3), reference)
    assert explain_estimated("roc_auc", before, now, reference, 0.5) == []
    unlabelled = ReferenceSummary(reference.fingerprint, reference.n, reference.numeric)
    assert explain_estimated("estimated.roc_auc", before, now, unlabelled, 0.5) == []
    assert explain_estimated("estimated.f1", before, BucketSummary(), reference, 0.5) == []


@st.composite
def windows(draw: st.DrawFn) -> tuple[ReferenceSummary, BucketSummary, BucketSummary]:
    def hist(size: int = SCORE_BINS) -> list[int]:
        cells = draw(st.dictionaries(st.integers(0, size - 1), st.integers(1, 400), max_size=8))
        return [cells.get(i, 0) for i in range(size)]

    neg, pos = hist(), hist()
    neg[draw(st.integers(0, 99))] += 1
    pos[draw(st.integers(0, 99))] += 1
    reference = ReferenceSummary("fp", 1, class_score_hist={"0": neg, "1": pos})
    values = [f"v{i}" for i in range(draw(st.integers(1, 5)))]

    def window() -> BucketSummary:
        summary = BucketSummary()
        for value in draw(st.lists(st.sampled_from(values), min_size=1, unique=True)):
            h = hist()
            summary.segments[f"seg={value}"] = BucketSummary(n=sum(h), score_hist=h)
        return summary

    return reference, window(), window()


@settings(max_examples=150, deadline=None)
@given(windows(), st.sampled_from(["estimated.roc_auc", "estimated.accuracy"]))
def test_mix_and_performance_add_up_to_the_estimated_change(
    data: tuple[ReferenceSummary, BucketSummary, BucketSummary], metric: str
) -> None:
    reference, before, now = data
    for result in explain_estimated(metric, before, now, reference, 0.5):
        parts = sum(s.mix + s.performance for s in result.slices)
        assert abs(parts - result.change) <= 1e-9
        assert result.metric.startswith("estimated ")


def _old_bucket(summary: BucketSummary, reference: ReferenceSummary) -> dict[str, object]:
    """The bucket as the code before `slice_labels` stored it: per slice [labelled, correct,
    4 negatives' bins, 4 positives' bins] in `slices`, JSON lists, no trimming."""
    data = summary.to_json()
    data.pop("slice_labels", None)
    data.pop("slice_scores", None)
    old = {}
    for name, flat in summary.slice_labels.items():
        count = len(slice_keys(reference, name))
        full = flat + [0] * (count * LABEL_WIDTH - len(flat))
        rows = []
        for i in range(count):
            c = full[i * LABEL_WIDTH : (i + 1) * LABEL_WIDTH]
            neg, pos = c[1 : 1 + SLICE_SCORE_BINS], c[1 + SLICE_SCORE_BINS :]
            rows += [sum(neg) + sum(pos), c[0], *neg, 0, *pos, 0]  # quartiles: 4th bin empty
        old[name] = rows
    data["slices"] = old
    return data


def test_old_buckets_load_merge_and_are_read(
    fitted: tuple[ReferenceSummary, BucketSummary],
) -> None:
    reference, before = fitted
    now = BucketSummary.from_json(json.loads(json.dumps(before.to_json())))
    assert now.slice_labels == before.slice_labels
    assert now.slice_scores == before.slice_scores
    stored = before.to_json()
    assert isinstance(stored["slice_labels"]["colour"], str)  # comma-joined, compact
    # a list form (as a hand-written or older payload might hold) is read as well
    listed = {**stored, "slice_labels": {k: v for k, v in before.slice_labels.items()}}
    assert BucketSummary.from_json(listed).slice_labels == before.slice_labels
    # a feature without missing values: its (missing) slice is all zeros and not stored
    colour = before.slice_labels["colour"]
    assert len(colour) <= (len(slice_keys(reference, "colour")) - 1) * LABEL_WIDTH

    old = BucketSummary.from_json(json.loads(json.dumps(_old_bucket(before, reference))))
    old_slices = feature_slices(old, reference)["colour"]
    new_slices = feature_slices(before, reference)["colour"]
    for key, data in new_slices.items():
        assert (old_slices[key].labelled, old_slices[key].correct) == (
            data.labelled,
            data.correct,
        )
        assert len(old_slices[key].positives) == 4
    mixed = merge_all([old, before])  # old and new buckets in one window: no error
    assert mixed.slices and mixed.slice_labels
    read = feature_slices(mixed, reference)["colour"]  # the new layout alone
    for key, data in new_slices.items():
        assert (read[key].labelled, read[key].positives) == (data.labelled, data.positives)
    # an old "before" against a new window: accuracy splits, the AUC skips feature slices
    worse = _predictions_labelled(reference)
    assert any(
        a.slices[0].dimension == "colour" for a in explain("accuracy", old, worse, reference)
    )
    auc = explain("roc_auc", old, worse, reference)
    assert all(a.slices[0].dimension == "region" for a in auc)


def _predictions_labelled(reference: ReferenceSummary) -> BucketSummary:
    frame = _frame(np.random.default_rng(9), 6000, red_sep=0.2)
    return BucketSummary.from_json(
        quality_summary(frame, reference, ["x", "colour"], ("region",), TASK, 0.5)
    )


def test_a_breaching_estimate_gets_estimated_hint_lines(
    fitted: tuple[ReferenceSummary, BucketSummary],
) -> None:
    """The engine's explain stage puts the label-free split on a breaching estimate, against
    the reference's folded rows (no store read: the reference holds per-slice scores)."""
    from detectors.base import WindowSummary
    from detectors.estimated import Estimated
    from monitor.config.models import SLOConfig
    from monitor.engine.root_cause import explain_values

    reference, before = fitted
    frame = _frame(np.random.default_rng(4), 20000, eu_sep=0.0)
    summary = _predictions(frame, reference)
    window = WindowSummary("24h", NOW - 24 * HOUR, NOW, summary, NOW - HOUR)
    reference = ReferenceSummary(**{**reference.__dict__, "quality": before.to_json()})
    values = {v.metric: v for v in Estimated().compute(window, reference, NOW)}
    items = [
        (SLOConfig(metric=m, objective=">= 0.99", window=timedelta(hours=24)), values[m])
        for m in ("estimated.roc_auc", "estimated.accuracy")
    ]
    out = explain_values(None, "m", reference, {timedelta(hours=24): window}, items)  # type: ignore[arg-type]
    for value in out:
        assert value.root_cause, value.metric
        assert value.root_cause[0].startswith("region = EU: 10% → 10% of traffic, estimated ")
        assert value.root_cause_table[0]["metric"].startswith("estimated ")


def test_segments_now_have_their_own_estimates(
    fitted: tuple[ReferenceSummary, BucketSummary],
) -> None:
    """Segments carry their predictions' score histogram, so a `segment_by` estimate has a
    value per segment (it had none before), and the degraded segment's is the lowest."""
    from detectors.base import WindowSummary
    from detectors.estimated import Estimated

    reference, _ = fitted
    summary = _predictions(_frame(np.random.default_rng(5), 20000, eu_sep=0.0), reference)
    window = WindowSummary("24h", NOW - 24 * HOUR, NOW, summary, NOW - HOUR)
    auc = {
        key: next(
            v.value
            for v in Estimated().compute(window.segment(key), reference, NOW)
            if v.metric == "estimated.roc_auc"
        )
        for key in ("region=EU", "region=US", "region=APAC")
    }
    assert all(v is not None for v in auc.values())
    assert min(auc, key=lambda k: auc[k] or 0.0) == "region=EU"


def test_the_per_slice_counts_stay_within_the_storage_budget() -> None:
    """Issue 15's budget: a stored bucket (prediction + label part, JSON as the store writes
    it) with every per-slice count is at most 1.3x the same bucket without them, at 20
    features and 1,000 predictions an hour, half labelled (bench/attribution_bench.py's
    buckets, measured there as 1.27x)."""
    from monitor.ingest.batches import LabelBatch
    from monitor.ingest.summarize_labels import summarize_labels

    rng = np.random.default_rng(11)
    names = [f"f{i:03d}" for i in range(20)]
    categorical = [n for i, n in enumerate(names) if i % 4 == 3]

    def rows(n: int) -> pd.DataFrame:
        y = (rng.random(n) < 0.2).astype(int)
        score = np.clip(rng.beta(2, 5, n) + 0.35 * y, 0, 1)
        data: dict[str, object] = {"@label": y.astype(str), "@score": score}
        for i, name in enumerate(names):
            if name in categorical:
                size = (3, 10, 50)[i % 3]
                p = 1.0 / np.arange(1, size + 1)
                data[name] = np.array([f"c{j}" for j in range(size)])[
                    rng.choice(size, n, p=p / p.sum())
                ]
            else:
                data[name] = rng.normal(0, 1, n)
        frame = pd.DataFrame(data)
        frame["@prediction"] = (score >= 0.5).astype(int).astype(str)
        return frame

    reference = fit_reference(rows(20000), names, categorical, "fp")
    frame = rows(1000)
    at = pd.Series(pd.Timestamp(NOW - HOUR), index=frame.index)
    ids = pd.Series(np.arange(len(frame)))
    batch = PredictionBatch(ids, at, frame["@score"], frame["@prediction"], frame[names])
    predictions = merge_all(summarize_predictions(batch, reference, TASK, 0.5, HOUR, NOW).values())
    half = frame.index[: len(frame) // 2]
    labels = merge_all(
        summarize_labels(
            LabelBatch(
                ids=ids[half],
                labeled_at=at[half],
                label=frame["@label"][half],
                predicted_at=at[half],
                score=frame["@score"][half],
                decision=frame["@prediction"][half],
                features=frame.loc[half, names],
            ),
            TASK,
            0.5,
            HOUR,
            NOW,
            None,
            reference,
        ).values()
    )
    assert predictions.slice_scores and labels.slice_labels

    def size(summary: BucketSummary, keep: bool) -> int:
        data = summary.to_json()
        if not keep:
            data.pop("slice_scores", None)
            data.pop("slice_labels", None)
        return len(json.dumps(data))

    with_slices = size(predictions, True) + size(labels, True)
    without = size(predictions, False) + size(labels, False)
    assert with_slices / without <= 1.3, (with_slices, without)
