"""The shift-share attribution: parts add up, the broken segment is found, mix is told apart."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score

from detectors.attribution import OTHER, SliceCounts, attribute, format_line


@st.composite
def periods(draw: st.DrawFn) -> tuple[dict[str, SliceCounts], dict[str, SliceCounts]]:
    def side(values: list[str]) -> dict[str, SliceCounts]:
        out = {}
        for v in values:
            den = draw(st.integers(0, 500))
            num = draw(st.integers(0, den))
            out[v] = SliceCounts(den + draw(st.integers(0, 50)), float(num), float(den))
        return out

    names = [f"s{i}" for i in range(draw(st.integers(1, 8)))]
    before = side(draw(st.lists(st.sampled_from(names), min_size=1, unique=True)))
    now = side(draw(st.lists(st.sampled_from(names), min_size=1, unique=True)))
    return before, now


@settings(max_examples=300, deadline=None)
@given(periods(), st.integers(1, 100))
def test_mix_and_performance_add_up_to_the_total_change(
    data: tuple[dict[str, SliceCounts], dict[str, SliceCounts]], min_count: int
) -> None:
    before, now = data
    if sum(c.denominator for c in before.values()) == 0 or not sum(
        c.denominator for c in now.values()
    ):
        with pytest.raises(ValueError):
            attribute("seg", before, now, min_count=min_count)
        return
    result = attribute("seg", before, now, min_count=min_count)
    parts = sum(s.mix + s.performance for s in result.slices)
    assert abs(parts - result.change) <= 1e-12
    expected_before = sum(c.numerator for c in before.values()) / sum(
        c.denominator for c in before.values()
    )
    assert result.before == pytest.approx(expected_before, abs=1e-15)


def _rows(
    rng: np.random.Generator, n: int, share: float, acc: dict[str, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulated labelled rows: segment, truth, prediction (correct with the segment's rate)."""
    segment = np.where(rng.random(n) < share, "EU", rng.choice(["US", "APAC"], n))
    truth = rng.integers(0, 2, n)
    correct = rng.random(n) < np.vectorize(acc.__getitem__)(segment)
    return segment, truth, np.where(correct, truth, 1 - truth)


def _counts(segment: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> dict[str, SliceCounts]:
    out = {}
    for value in np.unique(segment):
        mask = segment == value
        hits = float((truth[mask] == pred[mask]).sum())
        out[str(value)] = SliceCounts(int(mask.sum()), hits, float(mask.sum()))
    return out


def test_a_segment_losing_accuracy_ranks_first_with_most_of_the_drop() -> None:
    rng = np.random.default_rng(7)
    base = {"EU": 0.95, "US": 0.95, "APAC": 0.95}
    ref = _rows(rng, 40_000, 0.10, base)
    cur = _rows(rng, 40_000, 0.10, {**base, "EU": 0.60})
    result = attribute("region", _counts(*ref), _counts(*cur))
    # the total is the same number scikit-learn computes on the rows themselves
    assert result.before == pytest.approx(accuracy_score(ref[1], ref[2]), abs=1e-12)
    assert result.now == pytest.approx(accuracy_score(cur[1], cur[2]), abs=1e-12)
    top = result.slices[0]
    assert top.value == "EU"
    assert top.contribution / result.change >= 0.80
    assert abs(top.performance) > abs(top.mix)
    assert top.traffic_now == pytest.approx(0.10, abs=0.01)


def test_when_only_the_mix_changes_the_split_says_mix() -> None:
    rng = np.random.default_rng(11)
    acc = {"EU": 0.70, "US": 0.95, "APAC": 0.95}
    ref = _rows(rng, 40_000, 0.10, acc)
    cur = _rows(rng, 40_000, 0.40, acc)
    result = attribute("region", _counts(*ref), _counts(*cur))
    assert result.change < -0.05
    mix = sum(s.mix for s in result.slices)
    performance = sum(s.performance for s in result.slices)
    assert abs(mix) > 5 * abs(performance)
    assert result.slices[0].value == "EU"
    assert format_line(result.slices[0], result).endswith("(mostly mix)")


def test_small_slices_are_pooled_not_ranked() -> None:
    before = {
        "big": SliceCounts(1000, 900.0, 1000.0),
        "tiny": SliceCounts(5, 5.0, 5.0),
        "gone": SliceCounts(40, 40.0, 40.0),
    }
    now = {
        "big": SliceCounts(1000, 890.0, 1000.0),
        "tiny": SliceCounts(4, 0.0, 4.0),
        "new": SliceCounts(3, 0.0, 3.0),
    }
    result = attribute("seg", before, now, min_count=30)
    assert {s.value for s in result.slices} == {"big", OTHER}
    other = next(s for s in result.slices if s.value == OTHER)
    assert other.metric_before == pytest.approx(45 / 45)
    assert other.metric_now == pytest.approx(0 / 7)
    total = sum(s.contribution for s in result.slices)
    assert math.isclose(total, result.change, abs_tol=1e-12)


def test_the_formatted_line() -> None:
    before = {"20K–30K €": SliceCounts(120, 116.4, 120.0), "rest": SliceCounts(880, 836.0, 880.0)}
    now = {"20K–30K €": SliceCounts(250, 227.5, 250.0), "rest": SliceCounts(750, 712.5, 750.0)}
    result = attribute("salary_range", before, now)
    top = result.slices[0]
    share = top.contribution / result.change
    assert format_line(top, result) == (
        f"salary_range = 20K–30K €: 12% → 25% of traffic, accuracy 0.97 → 0.91,"
        f" explains {share:.0%} of the drop (mostly performance)"
    )
    assert 0.5 < share < 1.0


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="numerator exceeds"):
        SliceCounts(3, 4.0, 3.0)
    with pytest.raises(ValueError, match="min_count"):
        attribute("seg", {}, {}, min_count=0)
    with pytest.raises(ValueError, match="no rows"):
        attribute("seg", {"a": SliceCounts(5, 0.0, 0.0)}, {"a": SliceCounts(5, 1.0, 2.0)})
