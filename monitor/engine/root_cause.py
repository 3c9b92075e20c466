"""Stage "explain": root-cause hints on the quality values that breach.

Between "values" and "judge": for each quality SLO value on the wrong side of its objective
(a relative objective: always, it is resolved later), the change of its metric from the
"before" to the window is split over slices (`detectors.root_cause`) and the top three go on
the value, hence on the alert. "Before" is the reference's labelled rows, folded as one
bucket when the reference was fitted (`ReferenceSummary.quality`); a reference without labels
falls back to the window of the same length just before this one, from the store.
Label-free estimates (`estimated.*`) are split from every prediction's score per
slice (`detectors.root_cause_estimated`), against the reference's folded rows when they hold
per-slice scores, else against the window before; a multiclass model's by segment only
(`detectors.root_cause_multiclass`), and without a segment column its breach carries one
line saying so. A `segment_by` SLO's breach (realised or estimated) is one segment's: it gets that
segment's place in its column's split and the rest of the column for comparison (segments
keep no per-feature counts, so nothing is split inside one; `detectors.root_cause_scope`).
Multiclass ranking metrics get the accuracy split, labelled as such on every line. Drift of
`@score` gets the inputs whose shift moves the score most (`detectors.root_cause.score_drivers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta

from detectors.attribution import Attribution, format_line
from detectors.base import WindowSummary
from detectors.root_cause import TOP, explain, ranked, score_drivers, table
from detectors.root_cause_estimated import (
    estimated_rest,
    estimated_split,
    explain_estimated,
    has_score_slices,
)
from detectors.root_cause_multiclass import NO_SPLIT, class_of
from detectors.root_cause_scope import (
    RestMetric,
    hintable,
    segment_hints,
    segment_key,
    split_for,
    stand_in,
)
from monitor.config.models import SLOConfig
from monitor.core.reference import SCORE_COLUMN, ReferenceSummary
from monitor.core.summaries import BucketSummary, merge_all
from monitor.core.values import MetricValue
from monitor.engine.runtime import Runtime
from monitor.store.state import load_buckets


def _wanted(slo: SLOConfig, value: MetricValue) -> bool:
    if value.value is None:
        return False
    if estimated_split(slo.metric) is None and not hintable(slo.metric):
        return False
    return slo.objective.relative or not slo.objective.is_good(value.value)


def _score_drift(slo: SLOConfig, value: MetricValue) -> bool:
    if value.feature != SCORE_COLUMN or value.value is None or slo.objective.relative:
        return False
    return slo.metric.startswith("drift.") and not slo.objective.is_good(value.value)


def explain_values(
    rt: Runtime,
    name: str,
    reference: ReferenceSummary,
    windows: Mapping[timedelta, WindowSummary],
    items: list[tuple[SLOConfig, MetricValue]],
) -> list[MetricValue]:
    """The values, with hints on those that breach (same order)."""
    befores: dict[tuple[timedelta, bool], BucketSummary] = {}
    splits: dict[tuple[timedelta, str], list[Attribution]] = {}
    out = []
    for slo, value in items:
        if _score_drift(slo, value):
            drivers = score_drivers(windows[slo.window].summary, reference)
            out.append(replace(value, root_cause=tuple(drivers)))
            continue
        if not _wanted(slo, value):
            out.append(value)
            continue
        window = windows[slo.window]
        label_free = estimated_split(slo.metric)
        if label_free is not None and reference.ovr_score_hist and not window.summary.segments:
            out.append(replace(value, root_cause=(NO_SPLIT,)))  # say why there is no split
            continue
        side = (slo.window, label_free is not None)
        if side not in befores:
            befores[side] = _before(rt, name, reference, window, label_free is not None)
        before, now = befores[side], window.summary
        if label_free is not None:
            cls = class_of(value.feature) if reference.ovr_score_hist else None
            estimated = f"estimated {label_free} {cls or ''}"
            if (slo.window, estimated) not in splits:
                splits[(slo.window, estimated)] = explain_estimated(
                    slo.metric, before, now, reference, window.settings.threshold, cls
                )
            hints = splits[(slo.window, estimated)]
            rest = estimated_rest(slo.metric, reference, window.settings.threshold, cls)
            out.append(_hinted(slo, value, estimated, hints, before, now, rest))
            continue
        split = split_for(slo.metric, before, now)
        if split is None:
            out.append(value)
            continue
        if (slo.window, split) not in splits:  # every segment of every SLO shares one split
            splits[(slo.window, split)] = explain(split, before, now, reference)
        out.append(_hinted(slo, value, split, splits[(slo.window, split)], before, now))
    return out


def _hinted(
    slo: SLOConfig,
    value: MetricValue,
    split: str,
    attributions: list[Attribution],
    before: BucketSummary,
    now: BucketSummary,
    rest: RestMetric | None = None,
) -> MetricValue:
    """The value with its lines and table: the top slices of the whole-model split, or for a
    `segment_by` value its segment's place in its column; a stand-in split says so."""
    if slo.segment_by:
        key = segment_key(value.feature or "", slo.segment_by, list(now.segments))
        if key is None:
            return value
        lines, rows = segment_hints(attributions, split, key, before, now, rest)
    else:
        lines = [format_line(s, a) for s, a in ranked(attributions)[:TOP]]
        rows = table(attributions)
    label = stand_in(slo.metric, split)
    return replace(
        value, root_cause=tuple(line + label for line in lines), root_cause_table=tuple(rows)
    )


def _before(
    rt: Runtime, name: str, reference: ReferenceSummary, window: WindowSummary, estimated: bool
) -> BucketSummary:
    """The reference's labelled bucket, or the window of the same length just before. For
    estimates the reference bucket must hold per-slice scores (one folded before they
    existed does not)."""
    if reference.quality.get("n_labelled"):
        quality = BucketSummary.from_json(reference.quality)
        if not estimated or has_score_slices(quality):
            return quality
    length = window.end - window.start
    with rt.sessions() as session:
        rows = load_buckets(session, name, window.start - length, window.start)
    return merge_all(summary for _, summary in rows)
