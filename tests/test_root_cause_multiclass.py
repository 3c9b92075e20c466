"""Label-free hints for a multiclass model: its estimates split by segment (segments keep
per-class score histograms), the segment whose model grew unsure ranks first, the parts add
up to the whole, the totals are the estimator's own values, and a model without a segment
column says why it has no split."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.attribution import format_line
from detectors.base import WindowSummary
from detectors.estimated import Estimated, multiclass_estimates
from detectors.root_cause import ranked
from detectors.root_cause_estimated import explain_estimated
from detectors.root_cause_multiclass import NO_SPLIT, class_of
from monitor.config.models import SLOConfig
from monitor.core.reference import ReferenceSummary
from monitor.core.summaries import SCORE_BINS, BucketSummary, merge_all
from monitor.engine import root_cause
from monitor.engine.root_cause import explain_values
from monitor.ingest.summarize import summarize_predictions
from tests.multiclass_data import (
    CLASSES,
    MULTICLASS,
    multiclass_rows,
    prediction_batch,
    reference_of,
)
from tests.test_quality_metrics import HOUR, NOW

DAY = timedelta(hours=24)


def _rows(seed: int, n: int, eu_sharpness: float = 1.0) -> pd.DataFrame:
    """Rows with a segment `region` (EU: 10%); in EU the logits are scaled by `eu_sharpness`
    (below 1: the model is less sure there, so fewer decisions are expected right)."""
    rng = np.random.default_rng(seed)
    eu = int(n * 0.1)
    parts = [
        multiclass_rows(rng, eu, sharpness=eu_sharpness).assign(region="EU"),
        multiclass_rows(rng, n - eu).assign(region=rng.choice(["US", "APAC"], n - eu)),
    ]
    rows = pd.concat(parts, ignore_index=True)
    rows["id"] = np.arange(1, len(rows) + 1)
    return rows


def _summary(rows: pd.DataFrame, reference: ReferenceSummary) -> BucketSummary:
    batch = replace(prediction_batch(rows), segments=rows[["region"]].reset_index(drop=True))
    return merge_all(summarize_predictions(batch, reference, MULTICLASS, 0.5, HOUR, NOW).values())


@pytest.fixture(scope="module")
def stream() -> tuple[ReferenceSummary, BucketSummary, BucketSummary]:
    reference = reference_of(_rows(1, 20000))
    before = _summary(_rows(2, 20000), reference)
    now = _summary(_rows(3, 20000, eu_sharpness=0.2), reference)
    return reference, before, now


def test_segments_keep_per_class_scores_that_add_up_to_the_bucket(
    stream: tuple[ReferenceSummary, BucketSummary, BucketSummary],
) -> None:
    """Per segment value, its per-class histograms (trimmed); the values of a column sum to
    the bucket's exactly, and each segment has its own estimate (EU's the lowest)."""
    reference, _, now = stream
    total = merge_all(now.segments.values())
    for key, counts in now.scores_hist.items():
        assert total.scores_hist[key] + [0] * (SCORE_BINS - len(total.scores_hist[key])) == counts
    window = WindowSummary("24h", NOW - DAY, NOW, now, NOW - HOUR)
    accuracy = {
        key: next(
            v.value
            for v in Estimated().compute(window.segment(key), reference, NOW)
            if v.metric == "estimated.accuracy"
        )
        for key in ("region=EU", "region=US", "region=APAC")
    }
    assert all(v is not None for v in accuracy.values())
    assert min(accuracy, key=lambda k: accuracy[k] or 0.0) == "region=EU"


CASES = [
    ("estimated.accuracy", None),
    ("estimated.roc_auc", None),
    *(("estimated.roc_auc", cls) for cls in CLASSES),
]


@pytest.mark.parametrize(("metric", "cls"), CASES)
def test_the_unsure_segment_ranks_first(
    stream: tuple[ReferenceSummary, BucketSummary, BucketSummary], metric: str, cls: str | None
) -> None:
    reference, before, now = stream
    [region] = explain_estimated(metric, before, now, reference, 0.5, cls)
    top, whole = ranked([region])[0]
    assert (top.dimension, top.value) == ("region", "EU")
    assert whole.change < 0
    assert top.contribution / whole.change >= 0.8
    assert abs(top.performance) > abs(top.mix)
    assert abs(sum(s.contribution for s in region.slices) - region.change) <= 1e-9
    assert format_line(top, whole).startswith("region = EU: 10% → 10% of traffic, estimated ")
    # the totals are the estimator's own values on the whole window
    values = multiclass_estimates(now, reference, "24h")
    feature = None if cls is None else f"class={cls}"
    [expected] = [v for v in values if v.metric == metric and v.feature == feature]
    assert expected.value is not None
    assert region.now == pytest.approx(expected.value, abs=1e-9)


def test_a_breach_without_segments_says_why_it_has_no_split(
    stream: tuple[ReferenceSummary, BucketSummary, BucketSummary],
) -> None:
    reference, _, now = stream
    bare = replace(now, segments={})
    window = WindowSummary("24h", NOW - DAY, NOW, bare, NOW - HOUR)
    reference = replace(reference, quality={"n_labelled": 1, "n": 1})
    values = multiclass_estimates(bare, reference, "24h")
    items = [
        (SLOConfig(metric=v.metric, objective=">= 0.99", window=DAY), v)
        for v in values
        if v.value is not None
    ]
    assert items
    for value in explain_values(None, "m", reference, {DAY: window}, items):  # type: ignore[arg-type]
        assert value.root_cause == (NO_SPLIT,)
        assert value.root_cause_table == ()


def test_a_segment_by_multiclass_estimate_names_its_segment(
    stream: tuple[ReferenceSummary, BucketSummary, BucketSummary], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine path: EU's `segment_by` estimate breaches and gets its line of the region
    split and the other regions pooled (held); the reference bucket has no per-class scores,
    so the comparison is the window before, read from the store (here: given)."""
    reference, before, now = stream
    window = WindowSummary("24h", NOW - DAY, NOW, now, NOW - HOUR)
    slo = SLOConfig(
        metric="estimated.accuracy", objective=">= 0.6", window=DAY, segment_by="region"
    )
    [value] = [
        replace(v, feature="region=EU")
        for v in Estimated().compute(window.segment("region=EU"), reference, NOW)
        if v.metric == "estimated.accuracy"
    ]
    assert value.value is not None and value.value < 0.6

    monkeypatch.setattr(root_cause, "_before", lambda *args: before)
    [out] = explain_values(None, "m", reference, {DAY: window}, [(slo, value)])  # type: ignore[arg-type]
    first, rest = out.root_cause
    assert first.startswith("region = EU: 10% → 10% of traffic, estimated accuracy ")
    assert rest.startswith("other region values together: estimated accuracy ")
    old, new = (float(x) for x in rest.split(": estimated accuracy ")[1].split(";")[0].split(" → "))
    assert abs(new - old) < 0.02


def test_class_of_reads_the_class_of_a_label() -> None:
    assert class_of("class=cat") == "cat"
    assert class_of("region=EU/class=dog") == "dog"
    assert class_of("region=EU") is None
    assert class_of(None) is None


@st.composite
def windows(draw: st.DrawFn) -> tuple[ReferenceSummary, BucketSummary, BucketSummary]:
    """A calibrated reference and two windows of random per-class histograms in 2-4
    segment values (coarse: 10 occupied bins per class)."""
    reference_rows = multiclass_rows(np.random.default_rng(draw(st.integers(0, 5))), 3000)
    reference = reference_of(reference_rows)
    counts = st.lists(st.integers(0, 60), min_size=10, max_size=10)

    def side() -> BucketSummary:
        summary = BucketSummary()
        for v in range(draw(st.integers(2, 4))):
            seg = BucketSummary()
            for cls in CLASSES:
                for part in ("1", "0"):
                    seg.scores_hist[f"{cls}|{part}"] = draw(counts) + [0] * (SCORE_BINS - 10)
            seg.n = max(sum(seg.scores_hist[f"{c}|1"]) for c in CLASSES) * len(CLASSES)
            summary.segments[f"seg={v}"] = seg
        return summary

    return reference, side(), side()


@settings(max_examples=40, deadline=None)
@given(windows(), st.sampled_from(CASES))
def test_mix_and_performance_add_up_to_the_estimated_change(
    data: tuple[ReferenceSummary, BucketSummary, BucketSummary], case: tuple[str, str | None]
) -> None:
    reference, before, now = data
    metric, cls = case
    for result in explain_estimated(metric, before, now, reference, 0.5, cls):
        parts = sum(s.mix + s.performance for s in result.slices)
        assert abs(parts - result.change) <= 1e-9
        assert result.metric.startswith("estimated ")


def test_segment_class_scores_stay_within_the_storage_budget() -> None:
    """What the per-segment class histograms cost: a stored multiclass bucket (3 classes,
    20 features, 1,000 predictions an hour, 80% labelled, a segment column of 5 values) is
    at most 1.3x the same bucket without them (measured 1.25x; about 1.4 KB per segment
    value per bucket, so 1.18x at 3 values and 1.34x at 10)."""
    from monitor.core.reference import CLASS_SCORE_PREFIX
    from monitor.ingest.fit import fit_reference
    from monitor.ingest.summarize import summarize_labels
    from tests.multiclass_data import COLUMNS, label_batch

    rng = np.random.default_rng(3)
    names = [f"f{i:03d}" for i in range(20)]
    categorical = [n for i, n in enumerate(names) if i % 4 == 3]

    def rows(n: int) -> pd.DataFrame:
        frame = multiclass_rows(rng, n)
        for i, name in enumerate(names):
            size = (3, 10, 50)[i % 3]
            frame[name] = (
                rng.choice([f"c{j}" for j in range(size)], n)
                if name in categorical
                else rng.normal(0, 1, n)
            )
        frame["region"] = rng.choice([f"r{j}" for j in range(5)], n)
        return frame

    fitted = rows(20000)
    frame = pd.DataFrame({f"{CLASS_SCORE_PREFIX}{c}": fitted[COLUMNS[c]] for c in CLASSES})
    frame["@prediction"], frame["@label"] = fitted["decision"], fitted["label"]
    frame[names] = fitted[names]
    reference = fit_reference(frame, names, categorical, "fp", MULTICLASS)
    hour = rows(1000)
    labelled = hour[hour["label"].notna()].reset_index(drop=True)
    batch = replace(
        prediction_batch(hour),
        features=hour[names].reset_index(drop=True),
        segments=hour[["region"]].reset_index(drop=True),
    )
    predictions = merge_all(
        summarize_predictions(batch, reference, MULTICLASS, 0.5, HOUR, NOW).values()
    )
    labels = replace(label_batch(hour), segments=labelled[["region"]], features=labelled[names])
    label_part = merge_all(
        summarize_labels(labels, MULTICLASS, 0.5, HOUR, NOW, None, reference).values()
    ).to_json()
    assert len(predictions.segments) == 5
    assert all(seg.scores_hist for seg in predictions.segments.values())
    data = predictions.to_json()
    with_segments = len(json.dumps(data)) + len(json.dumps(label_part))
    for seg in data["segments"].values():
        seg.pop("scores_hist")
    without = len(json.dumps(data)) + len(json.dumps(label_part))
    assert with_segments / without <= 1.3, (with_segments, without)


def test_the_reference_bucket_is_the_before_of_multiclass_estimates() -> None:
    """The reference's folded rows keep the per-class scores per segment too, so the engine
    compares a multiclass estimate with the reference (as for binary), not the window before,
    and the unsure segment still ranks first against it."""
    from detectors.root_cause_estimated import has_score_slices
    from monitor.core.reference import CLASS_SCORE_PREFIX, LABEL_COLUMN
    from monitor.ingest.fit_quality import quality_summary
    from tests.multiclass_data import COLUMNS

    rows = _rows(4, 20000)
    reference = reference_of(rows)
    frame = pd.DataFrame({f"{CLASS_SCORE_PREFIX}{c}": rows[COLUMNS[c]] for c in CLASSES})
    frame["@prediction"], frame[LABEL_COLUMN], frame["region"] = (
        rows["decision"],
        rows["label"],
        rows["region"],
    )
    before = BucketSummary.from_json(
        quality_summary(frame, reference, [], ("region",), MULTICLASS, 0.5)
    )
    assert has_score_slices(before)
    assert set(before.segments) == {"region=EU", "region=US", "region=APAC"}
    now = _summary(_rows(5, 20000, eu_sharpness=0.2), reference)
    [region] = explain_estimated("estimated.accuracy", before, now, reference, 0.5)
    top, whole = ranked([region])[0]
    assert (top.dimension, top.value) == ("region", "EU")
    assert top.contribution / whole.change >= 0.8
    # the reference side's total is the estimator's value on the reference rows
    [expected] = [
        v
        for v in multiclass_estimates(before, reference, "ref")
        if v.metric == "estimated.accuracy"
    ]
    assert region.before == pytest.approx(expected.value, abs=1e-9)
