"""Mergeable per-bucket summaries: every window statistic is computed from these counts.

A summary is a bag of counters; merging two adds them (minimum and maximum for extremes,
latest for times), so the merge is associative and commutative and a window of any length
costs one merge per bucket, never a rescan of rows. Segments (quality per country, per
model version) are nested summaries with the same merge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SCORE_BINS = 100
"""Classification scores are histogrammed on 100 equal bins of [0, 1]; AUC, ECE and the
estimated metrics are computed on these bins (their error is bounded by the bin width)."""

LAG_EDGES_S = [
    1,
    5,
    15,
    30,
    60,
    300,
    900,
    1800,
    3600,
    7200,
    14400,
    28800,
    43200,
    86400,
    172800,
    259200,
    432000,
    604800,
    1209600,
    2592000,
]
"""Label delay histogram edges (seconds): 1s ... 30d, roughly log-spaced."""

STAT_COUNT, STAT_SUM, STAT_SUMSQ, STAT_MIN, STAT_MAX = range(5)


def _add_lists(a: list[Any], b: list[Any]) -> list[Any]:
    if len(a) == len(b):  # the usual case: the same bins on both sides
        return [x + y for x, y in zip(a, b, strict=True)]
    if len(a) < len(b):  # trimmed lists (`monitor.core.slices`): the tail is the longer's
        a, b = b, a
    return [x + y for x, y in zip(a, b, strict=False)] + a[len(b) :]


def _accumulate(target: dict[str, Any], source: dict[str, Any]) -> None:
    for key, value in source.items():
        target[key] = target.get(key, 0) + value


def _merge_stats(a: list[float] | None, b: list[float]) -> list[float]:
    """[count, sum, sum of squares, min, max] of a numeric column."""
    if not a or a[STAT_COUNT] == 0:
        return list(b)
    if b[STAT_COUNT] == 0:
        return list(a)
    return [
        a[0] + b[0],
        a[1] + b[1],
        a[2] + b[2],
        min(a[3], b[3]),
        max(a[4], b[4]),
    ]


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


_COUNTER_DICTS = (
    "bad",
    "missing",
    "invalid",
    "out_of_range",
    "absent",
    "confusion",
    "prob_sums",
    "regression",
    "future_due",
)
_LIST_DICTS = (
    "numeric",
    "numeric_sums",
    "class_score_hist",
    "scores_hist",
    "ovr_score_hist",
    "slices",
    "slice_labels",
    "slice_scores",
)
_TEXT_LISTS = ("slice_labels", "slice_scores")
"""Per-slice count lists stored as comma-joined text (`monitor.core.slices`)."""


@dataclass
class BucketSummary:
    """Counts for one model and one bucket of prediction time (or one segment of it).

    `bad` counts rows Vigil could not use, by reason; `missing` null values per feature;
    `invalid` non-null values of the wrong type; `absent` rows whose column was missing from
    the source; `out_of_range` numeric values outside the reference's range.

    `future_due` pairs the `future_timestamp` rows counted in this bucket with the bucket
    they are summarised in (its start, ISO): a window that holds both has the row in `n`
    already, so a rate's denominator counts it once (`detectors.data_quality`).
    """

    n: int = 0
    newest_prediction: datetime | None = None
    bad: dict[str, int] = field(default_factory=dict)
    score_hist: list[int] = field(default_factory=list)
    numeric: dict[str, list[int]] = field(default_factory=dict)
    numeric_sums: dict[str, list[float]] = field(default_factory=dict)
    """Sum of the values in each reference bin: the bin's mean places its mass for Wasserstein."""
    numeric_stats: dict[str, list[float]] = field(default_factory=dict)
    categorical: dict[str, dict[str, int]] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    absent: dict[str, int] = field(default_factory=dict)
    out_of_range: dict[str, int] = field(default_factory=dict)
    n_labelled: int = 0
    newest_label: datetime | None = None
    lag_hist: list[int] = field(default_factory=list)
    confusion: dict[str, int] = field(default_factory=dict)
    class_score_hist: dict[str, list[int]] = field(default_factory=dict)
    prob_sums: dict[str, float] = field(default_factory=dict)
    """Per-row sums (log loss, Brier, their squares) of labelled scored rows, any task."""
    scores_hist: dict[str, list[int]] = field(default_factory=dict)
    """Multiclass with `scores:`: per class, its score over the predictions decided as the
    class (`class|1`) and over the others (`class|0`), on SCORE_BINS: what estimates read."""
    ovr_score_hist: dict[str, list[int]] = field(default_factory=dict)
    """Multiclass, labelled rows: `class|1` the class's score where the truth is the class,
    `class|0` where it is another: one-vs-rest AUC and calibration per class, exactly merged."""
    regression: dict[str, float] = field(default_factory=dict)
    future_due: dict[str, int] = field(default_factory=dict)
    segments: dict[str, BucketSummary] = field(default_factory=dict)
    slices: dict[str, list[int]] = field(default_factory=dict)
    """Per feature, its slices' labelled and correct rows one after the other, for tasks
    without a score (and, in buckets written before `slice_labels`, score quartiles too)."""
    slice_labels: dict[str, list[int]] = field(default_factory=dict)
    """Binary with a score, labels part: per feature slice its correct rows and per-class
    score bins (`monitor.core.slices`), what root-cause attribution needs."""
    slice_scores: dict[str, list[int]] = field(default_factory=dict)
    """Binary with a score, predictions part: per feature slice the score bins of every
    prediction, what label-free (estimated) root-cause hints need."""

    def merge(self, other: BucketSummary) -> BucketSummary:
        return merge_all((self, other))

    def merge_into(self, other: BucketSummary) -> None:
        """Add `other` to this summary in place; `other` is left untouched."""
        self.n += other.n
        self.n_labelled += other.n_labelled
        self.newest_prediction = _later(self.newest_prediction, other.newest_prediction)
        self.newest_label = _later(self.newest_label, other.newest_label)
        self.score_hist = _add_lists(self.score_hist, other.score_hist)
        self.lag_hist = _add_lists(self.lag_hist, other.lag_hist)
        for name in _COUNTER_DICTS:
            _accumulate(getattr(self, name), getattr(other, name))
        for name in _LIST_DICTS:
            mine: dict[str, list[Any]] = getattr(self, name)
            for key, counts in getattr(other, name).items():
                mine[key] = _add_lists(mine.get(key, []), counts)
        for key, cats in other.categorical.items():
            _accumulate(self.categorical.setdefault(key, {}), cats)
        for key, stats in other.numeric_stats.items():
            self.numeric_stats[key] = _merge_stats(self.numeric_stats.get(key), stats)
        for key, segment in other.segments.items():
            self.segments.setdefault(key, BucketSummary()).merge_into(segment)

    def to_json(self) -> dict[str, Any]:
        """Only non-empty parts are written: most buckets use a fraction of the fields."""
        data: dict[str, Any] = {"n": self.n}
        if self.newest_prediction:
            data["newest_prediction"] = self.newest_prediction.isoformat()
        if self.newest_label:
            data["newest_label"] = self.newest_label.isoformat()
        if self.n_labelled:
            data["n_labelled"] = self.n_labelled
        for name in (
            "score_hist",
            "lag_hist",
            *_COUNTER_DICTS,
            *_LIST_DICTS,
            "categorical",
            "numeric_stats",
        ):
            value = getattr(self, name)
            if value and name in _TEXT_LISTS:
                data[name] = {k: _to_text(v) for k, v in value.items()}
            elif value:
                data[name] = value
        if self.segments:
            data["segments"] = {k: s.to_json() for k, s in self.segments.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BucketSummary:
        return cls(
            n=int(data.get("n", 0)),
            newest_prediction=_parse(data.get("newest_prediction")),
            newest_label=_parse(data.get("newest_label")),
            n_labelled=int(data.get("n_labelled", 0)),
            score_hist=list(data.get("score_hist", [])),
            lag_hist=list(data.get("lag_hist", [])),
            numeric={k: list(v) for k, v in data.get("numeric", {}).items()},
            numeric_sums={k: list(v) for k, v in data.get("numeric_sums", {}).items()},
            numeric_stats={k: list(v) for k, v in data.get("numeric_stats", {}).items()},
            class_score_hist={k: list(v) for k, v in data.get("class_score_hist", {}).items()},
            scores_hist={k: list(v) for k, v in data.get("scores_hist", {}).items()},
            ovr_score_hist={k: list(v) for k, v in data.get("ovr_score_hist", {}).items()},
            categorical={k: dict(v) for k, v in data.get("categorical", {}).items()},
            segments={k: cls.from_json(v) for k, v in data.get("segments", {}).items()},
            slices={k: list(v) for k, v in data.get("slices", {}).items()},
            slice_labels={k: _from_text(v) for k, v in data.get("slice_labels", {}).items()},
            slice_scores={k: _from_text(v) for k, v in data.get("slice_scores", {}).items()},
            **{name: dict(data.get(name, {})) for name in _COUNTER_DICTS},
        )


def merge_all(summaries: Iterable[BucketSummary]) -> BucketSummary:
    """Merge many summaries into a new one (windows merge hundreds of buckets)."""
    total = BucketSummary()
    for summary in summaries:
        total.merge_into(summary)
    return total


def ovr_key(cls: str, positive: bool) -> str:
    """The `ovr_score_hist` key of a class's score among rows of that class or of others."""
    return f"{cls}|{int(positive)}"


def _to_text(counts: list[int]) -> str:
    """Integers as comma-joined text without trailing zeros (positions are fixed)."""
    end = len(counts)
    while end and not counts[end - 1]:
        end -= 1
    return ",".join(map(str, counts[:end]))


def _from_text(value: Any) -> list[int]:
    """Back from `_to_text` (a JSON list is read as it is)."""
    if isinstance(value, str):
        return list(map(int, value.split(","))) if value else []
    return list(map(int, value))


def _parse(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
