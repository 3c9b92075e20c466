"""Label-free hints for `segment_by` estimates: a breaching segment's estimated value is
placed in its column's estimated split (its own line, the rest of the column pooled), as
`detectors.root_cause_scope` does for realised metrics, with the estimator's calibration."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from detectors.base import WindowSummary
from detectors.estimated import Estimated
from detectors.root_cause_estimated import estimated_rest
from monitor.config.models import SLOConfig
from monitor.core.reference import ReferenceSummary
from monitor.core.summaries import BucketSummary
from monitor.engine.root_cause import explain_values
from monitor.ingest.fit import fit_reference
from monitor.ingest.fit_quality import quality_summary
from tests.test_root_cause_estimated import HOUR, NOW, TASK, _frame, _predictions

METRICS = ["estimated.roc_auc", "estimated.accuracy"]
OBJECTIVE = {"estimated.roc_auc": 0.93, "estimated.accuracy": 0.85}
"""Between EU's estimate (about 0.90 and 0.81) and the other regions' (0.96, 0.90)."""


@pytest.fixture(scope="module")
def fitted() -> tuple[ReferenceSummary, BucketSummary]:
    frame = _frame(np.random.default_rng(7), 20000)
    reference = fit_reference(frame, ["x", "colour"], [], "fp")
    quality = quality_summary(frame, reference, ["x", "colour"], ("region",), TASK, 0.5)
    return reference, BucketSummary.from_json(quality)


@pytest.mark.parametrize("metric", METRICS)
def test_a_segment_by_estimate_names_its_segment_and_the_rest(
    fitted: tuple[ReferenceSummary, BucketSummary], metric: str
) -> None:
    """EU's scores lose their separation (10% of traffic); its `segment_by` estimate
    breaches, and its hints are EU's line of the region split (performance) and the other
    regions pooled, unchanged; the values on the lines are the estimator's own."""
    reference, before = fitted
    reference = ReferenceSummary(**{**reference.__dict__, "quality": before.to_json()})
    summary = _predictions(_frame(np.random.default_rng(21), 20000, eu_sep=0.0), reference)
    window = WindowSummary("24h", NOW - 24 * HOUR, NOW, summary, NOW - HOUR)
    slo = SLOConfig(
        metric=metric,
        objective=f">= {OBJECTIVE[metric]}",
        window=timedelta(hours=24),
        segment_by="region",
    )
    items = []
    estimates = {}
    for key in ("region=EU", "region=US", "region=APAC"):
        value = next(
            v
            for v in Estimated().compute(window.segment(key), reference, NOW)
            if v.metric == metric
        )
        value = value.__class__(**{**value.__dict__, "feature": key})
        estimates[key] = value.value
        items.append((slo, value))
    out = explain_values(None, "m", reference, {timedelta(hours=24): window}, items)  # type: ignore[arg-type]
    by_key = {v.feature: v for v in out}
    eu = by_key["region=EU"]
    assert eu.value is not None and eu.value < OBJECTIVE[metric]
    assert len(eu.root_cause) == 2, eu.root_cause
    name = metric.replace(".", " ")
    first, rest = eu.root_cause
    assert first.startswith(f"region = EU: 10% → 10% of traffic, {name} ")
    assert "(mostly performance)" in first
    assert f"→ {estimates['region=EU']:.2f}, explains " in first
    assert rest.startswith(f"other region values together: {name} ")
    assert "not split inside the segment" in rest
    # the other regions pooled hold: their estimate barely moves
    pooled = estimated_rest(metric, reference, 0.5)
    old, new = pooled(before, "region", "EU"), pooled(summary, "region", "EU")
    assert old is not None and new is not None and abs(new - old) < 0.02
    assert {r["slice"] for r in eu.root_cause_table} == {"EU", "US", "APAC"}
    assert all(r["metric"] == name for r in eu.root_cause_table)
    # segments that hold get no hints (their value is good)
    for key in ("region=US", "region=APAC"):
        assert by_key[key].value is not None and by_key[key].value >= OBJECTIVE[metric]
        assert by_key[key].root_cause == ()


def test_the_pooled_rest_is_the_estimate_of_the_other_values(
    fitted: tuple[ReferenceSummary, BucketSummary],
) -> None:
    """The pooled rest equals the estimator run on the other segments' merged summary."""
    reference, _ = fitted
    summary = _predictions(_frame(np.random.default_rng(22), 20000, eu_sep=0.0), reference)
    others = BucketSummary()
    for key in ("region=US", "region=APAC"):
        others.merge_into(summary.segments[key])
    window = WindowSummary("24h", NOW - 24 * HOUR, NOW, others, NOW - HOUR)
    expected = {v.metric: v.value for v in Estimated().compute(window, reference, NOW)}
    for metric in METRICS:
        got = estimated_rest(metric, reference, 0.5)(summary, "region", "EU")
        assert got == pytest.approx(expected[metric], abs=1e-9)
    assert estimated_rest("accuracy", reference, 0.5)(summary, "region", "EU") is None
