"""Mergeable per-bucket summaries: every window statistic is computed from these counts.

A summary is a bag of counters; merging two is adding them (and taking the max of the
newest-seen times), so the merge is associative and commutative and a window of any length
costs one merge per bucket, never a rescan of rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SCORE_BINS = 20
"""Classification scores are histogrammed on fixed, equal bins of [0, 1] per true class."""


def _add_lists(a: list[int], b: list[int]) -> list[int]:
    if len(a) < len(b):
        a, b = b, a
    return [x + (b[i] if i < len(b) else 0) for i, x in enumerate(a)]


def _add_nested(
    a: dict[str, dict[str, int]], b: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    out = {k: dict(v) for k, v in a.items()}
    for key, counts in b.items():
        target = out.setdefault(key, {})
        for cat, c in counts.items():
            target[cat] = target.get(cat, 0) + c
    return out


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


@dataclass
class BucketSummary:
    """Counts for one model and one bucket of prediction time."""

    n: int = 0
    newest_prediction: datetime | None = None
    bad: dict[str, int] = field(default_factory=dict)
    score_hist: list[int] = field(default_factory=list)
    numeric: dict[str, list[int]] = field(default_factory=dict)
    categorical: dict[str, dict[str, int]] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    n_labelled: int = 0
    newest_label: datetime | None = None
    confusion: dict[str, int] = field(default_factory=dict)
    class_score_hist: dict[str, list[int]] = field(default_factory=dict)
    regression: dict[str, float] = field(default_factory=dict)

    def merge(self, other: BucketSummary) -> BucketSummary:
        return BucketSummary(
            n=self.n + other.n,
            newest_prediction=_later(self.newest_prediction, other.newest_prediction),
            bad=dict(Counter(self.bad) + Counter(other.bad)),
            score_hist=_add_lists(self.score_hist, other.score_hist),
            numeric={
                k: _add_lists(self.numeric.get(k, []), other.numeric.get(k, []))
                for k in self.numeric.keys() | other.numeric.keys()
            },
            categorical=_add_nested(self.categorical, other.categorical),
            missing=dict(Counter(self.missing) + Counter(other.missing)),
            n_labelled=self.n_labelled + other.n_labelled,
            newest_label=_later(self.newest_label, other.newest_label),
            confusion=dict(Counter(self.confusion) + Counter(other.confusion)),
            class_score_hist={
                k: _add_lists(self.class_score_hist.get(k, []), other.class_score_hist.get(k, []))
                for k in self.class_score_hist.keys() | other.class_score_hist.keys()
            },
            regression={
                k: self.regression.get(k, 0.0) + other.regression.get(k, 0.0)
                for k in self.regression.keys() | other.regression.keys()
            },
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "newest_prediction": _iso(self.newest_prediction),
            "bad": self.bad,
            "score_hist": self.score_hist,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "missing": self.missing,
            "n_labelled": self.n_labelled,
            "newest_label": _iso(self.newest_label),
            "confusion": self.confusion,
            "class_score_hist": self.class_score_hist,
            "regression": self.regression,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BucketSummary:
        return cls(
            n=int(data.get("n", 0)),
            newest_prediction=_parse(data.get("newest_prediction")),
            bad=dict(data.get("bad", {})),
            score_hist=list(data.get("score_hist", [])),
            numeric={k: list(v) for k, v in data.get("numeric", {}).items()},
            categorical={k: dict(v) for k, v in data.get("categorical", {}).items()},
            missing=dict(data.get("missing", {})),
            n_labelled=int(data.get("n_labelled", 0)),
            newest_label=_parse(data.get("newest_label")),
            confusion=dict(data.get("confusion", {})),
            class_score_hist={k: list(v) for k, v in data.get("class_score_hist", {}).items()},
            regression={k: float(v) for k, v in data.get("regression", {}).items()},
        )


def merge_all(summaries: Iterable[BucketSummary]) -> BucketSummary:
    """Merge many summaries, accumulating in place (windows merge hundreds of buckets)."""
    total = BucketSummary()
    for s in summaries:
        total.n += s.n
        total.newest_prediction = _later(total.newest_prediction, s.newest_prediction)
        total.newest_label = _later(total.newest_label, s.newest_label)
        total.n_labelled += s.n_labelled
        _accumulate(total.bad, s.bad)
        _accumulate(total.missing, s.missing)
        _accumulate(total.confusion, s.confusion)
        total.score_hist = _add_lists(total.score_hist, s.score_hist)
        for key, counts in s.numeric.items():
            total.numeric[key] = _add_lists(total.numeric.get(key, []), counts)
        for key, counts in s.class_score_hist.items():
            total.class_score_hist[key] = _add_lists(total.class_score_hist.get(key, []), counts)
        for key, cats in s.categorical.items():
            _accumulate(total.categorical.setdefault(key, {}), cats)
        for key, value in s.regression.items():
            total.regression[key] = total.regression.get(key, 0.0) + value
    return total


def _accumulate(target: dict[str, int], source: dict[str, int]) -> None:
    for key, value in source.items():
        target[key] = target.get(key, 0) + value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
