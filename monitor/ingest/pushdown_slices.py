"""Push-down of the per-slice score counts (`monitor.core.slices`), binary with a score.

The local prediction fold keeps, per feature slice, every prediction's score on the slice
score bins (`BucketSummary.slice_scores`), and per segment value its 100-bin score histogram:
what label-free root-cause hints split. Here the same counts come from GROUP BYs on the
source, as parts of `monitor.ingest.pushdown`'s union: per numeric feature (bucket,
reference bin, slice score bin), per categorical feature (bucket, category, slice score bin),
per segment (bucket, value, score bin); `fold_slice_parts` groups reference bins into slices
and categories into the top ones, exactly as `monitor.ingest.summarize_slices` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from monitor.core.slices import NUMERIC_SLICE_WIDTH, SLICE_SCORE_BINS, slice_keys, trimmed
from monitor.core.summaries import SCORE_BINS, BucketSummary
from monitor.ingest.bucketing import OTHER

MISSING_BIN = -1
Branch = Callable[..., sa.Select[Any]]


def slice_branches(
    c: Any, features: list[str], segments: int, branch: Branch
) -> list[sa.Select[Any]]:
    """The GROUP BYs: `z<i>` per feature part label (`n<i>`, `c<i>`; key: its bin or
    category, extra: the slice score bin `tb`), `h<j>` per segment (key: its value, extra:
    the score bin `sb`)."""
    out = []
    for label in features:
        key = c[f"k{label[1:]}"] if label.startswith("n") else c[label]
        out.append(branch(c.b, f"z{label[1:]}", key, sa.func.count(), [key, c.tb], c.tb))
    for j in range(segments):
        key = c[f"s{j}"]
        out.append(branch(c.b, f"h{j}", key, sa.func.count(), [key, c.sb], c.sb))
    return out


def fold_slice_parts(
    by_part: dict[str, list[dict[str, Any]]],
    reference: Any,
    features: dict[str, str],
    segments: list[str],
    summary: Callable[[Any], BucketSummary],
) -> None:
    """Add the `z<i>` and `h<j>` rows to the bucket summaries, as the local fold has them."""
    bins = SLICE_SCORE_BINS
    grids: dict[tuple[int, str], list[int]] = {}
    for label, name in features.items():
        if name.startswith("@"):  # the score and the decision are not sliced
            continue
        keys = slice_keys(reference, name)
        count = len(keys)
        index = {k: i for i, k in enumerate(keys[:-2])}
        for row in by_part.get(f"z{label[1:]}", []):
            tb = int(row["extra"])
            if tb == MISSING_BIN:
                continue
            key = row["key"]
            if label.startswith("n"):
                k = int(float(key))
                at = count - 1 if k == MISSING_BIN else min(k // NUMERIC_SLICE_WIDTH, count - 2)
            else:
                at = count - 1 if key is None else index.get(str(key), count - 2)
            grid = grids.setdefault((int(row["bucket"]), name), [0] * (count * bins))
            grid[at * bins + tb] += int(row["cnt"])
    for (b, name), grid in grids.items():
        if any(grid):
            summary(b).slice_scores[name] = trimmed(grid)
    hists: dict[tuple[int, str], list[int]] = {}
    for j, column in enumerate(segments):
        kept = reference.segment_values.get(column)
        for row in by_part.get(f"h{j}", []):
            sb = int(row["extra"])
            if sb < 0:  # no score, or out of range
                continue
            value = "(missing)" if row["key"] is None else str(row["key"])
            if kept is not None and value not in kept:
                value = OTHER
            hist = hists.setdefault((int(row["bucket"]), f"{column}={value}"), [0] * SCORE_BINS)
            hist[sb] += int(row["cnt"])
    for (b, key), hist in hists.items():
        seg = summary(b).segments.setdefault(key, BucketSummary())
        seg.score_hist = trimmed(hist)
