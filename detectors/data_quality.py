"""Data quality: missing and invalid values, values out of the reference's range, new
categories, columns that vanished, duplicate ids and timestamps in the future."""

from __future__ import annotations

from datetime import datetime

from detectors.base import NON_NEGATIVE, SHARE, MetricInfo, WindowSummary
from detectors.intervals import wilson_interval
from monitor.core.reference import ReferenceSummary
from monitor.core.values import MetricValue


def _info(
    name: str, kind: str, description: str, bounds: tuple[float, float] = SHARE
) -> MetricInfo:
    return MetricInfo(name, "data_quality", kind, description=description, bounds=bounds)


def _rate(metric: str, k: int, n: int, label: str, feature: str | None = None) -> MetricValue:
    if n <= 0:
        return MetricValue(metric, None, 0, label, feature)
    return MetricValue(metric, k / n, n, label, feature, ci=wilson_interval(k, n))


class DataQuality:
    name: str = "data_quality"
    metrics: tuple[MetricInfo, ...] = (
        _info("dq.missing_rate", "missing_values", "share of rows with the feature missing"),
        _info("dq.invalid_rate", "schema_change", "share of values of the wrong type"),
        _info("dq.out_of_range_rate", "schema_change", "share outside the reference's range"),
        _info(
            "dq.new_categories",
            "schema_change",
            "categories never seen in the reference",
            NON_NEGATIVE,
        ),
        _info("dq.absent_rate", "schema_change", "share of rows whose column was missing"),
        _info("dq.duplicate_rate", "schema_change", "share of predictions with a repeated id"),
        _info("dq.future_rate", "schema_change", "share of predictions timed in the future"),
        _info("dq.bad_row_rate", "schema_change", "share of rows Vigil could not use"),
    )

    def compute(
        self, window: WindowSummary, reference: ReferenceSummary | None, now: datetime
    ) -> list[MetricValue]:
        s, label = window.summary, window.label
        out: list[MetricValue] = []
        features = [*reference.numeric, *reference.categorical] if reference is not None else []
        for name in features:
            rows = s.n - s.absent.get(name, 0)
            out.append(_rate("dq.missing_rate", s.missing.get(name, 0), rows, label, name))
            out.append(_rate("dq.absent_rate", s.absent.get(name, 0), s.n, label, name))
            out.append(_rate("dq.invalid_rate", s.invalid.get(name, 0), rows, label, name))
        if reference is not None:
            for name in reference.numeric:
                present = sum(s.numeric.get(name, []))
                out.append(
                    _rate("dq.out_of_range_rate", s.out_of_range.get(name, 0), present, label, name)
                )
            for name, ref in reference.categorical.items():
                current = s.categorical.get(name, {})
                unseen = [c for c in current if c not in ref.counts]
                n = sum(current.values())
                out.append(MetricValue("dq.new_categories", float(len(unseen)), n, label, name))
        # a future-dated row is counted where it was seen and summarised in its own bucket:
        # once both are in the window it is in `n` already, and counted once
        summarised_future = _due_within(s.future_due, window.end)
        seen = s.n + s.bad.get("duplicate_id", 0) + s.bad.get("future_timestamp", 0)
        seen -= summarised_future
        out.append(_rate("dq.duplicate_rate", s.bad.get("duplicate_id", 0), seen, label))
        out.append(_rate("dq.future_rate", s.bad.get("future_timestamp", 0), seen, label))
        bad = sum(s.bad.values())
        out.append(_rate("dq.bad_row_rate", bad, s.n + bad - summarised_future, label))
        return out


def _due_within(due: dict[str, int], end: datetime) -> int:
    """Future-dated rows counted in the window whose own bucket starts before its end: they
    are summarised in the window too (`BucketSummary.future_due`)."""
    return sum(count for start, count in due.items() if datetime.fromisoformat(start) < end)
