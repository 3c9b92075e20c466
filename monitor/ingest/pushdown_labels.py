"""Label summaries computed inside the source: one aggregate query per tick.

The new labels (after the label watermark, up to the settle time) are LEFT JOINed to their
predictions in the source and grouped by the *prediction's* bucket, so a late label updates
the bucket its prediction belongs to, as `monitor.ingest.summarize_labels` does from rows.
Only counts and sums come back: labelled rows, the newest label time and the label lag
histogram; the confusion counts; for a binary model with a score, the per-class score
histograms and the log loss / Brier sums; for regression, the error sums; per segment value
the same labelled parts; per reference feature the root-cause slice counts
(`monitor.core.slices`, stored by `monitor.ingest.summarize_slices`' own `_store`).

Every label row of the window gets one reason (`why`): none (summarised), `missing_id`,
`unmatched` (its prediction is not in the source yet: read as a row and held, exactly as the
local path holds it), `prediction_bad_timestamp` or `bad_label`; the counts per reason come
back too, so every row read is accounted for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement

from monitor.core.reference import SCORE_COLUMN, ReferenceSummary
from monitor.core.slices import NUMERIC_SLICE_WIDTH, SLICE_SCORE_BINS, score_edges, slice_keys
from monitor.core.summaries import LAG_EDGES_S, SCORE_BINS, BucketSummary
from monitor.ingest.bucketing import OTHER, count_bad
from monitor.ingest.pushdown import (
    _BINARY_FALSE,
    _BINARY_TRUE,
    EPOCH,
    PushdownColumns,
    _clean_score,
    _decision,
    _square,
    _utc,
)
from monitor.ingest.pushdown_sql import as_text, bin_index, epoch_seconds, is_nan, not_finite
from monitor.ingest.summarize_classes import PROB_EPS
from monitor.ingest.summarize_slices import _store

UNMATCHED = "unmatched"
"""A label whose prediction is not in the source yet: held, not counted bad."""
_DOUBLES = 6
PROB_KEYS = ("n", "positives", "score", "logloss", "logloss_sq", "brier", "brier_sq")
REGRESSION_KEYS = ("n", "sum_err", "sum_abs_err", "sum_sq_err", "sum_err4", "sum_y", "sum_y_sq")
APE_KEYS = ("n_ape", "sum_ape", "sum_ape_sq")


@dataclass(frozen=True)
class LabelColumns:
    """The joined labels' columns by role: the prediction side as for predictions."""

    preds: PushdownColumns
    pred_id: ColumnElement[Any]
    label_id: ColumnElement[Any]
    label_ts: ColumnElement[Any]
    label: ColumnElement[Any]
    label_kind: str
    """'text', 'bool' or a number kind: how the label becomes a class."""


@dataclass(frozen=True)
class LabelPlan:
    """What the query computes, for `fold_labels` to read it back."""

    task: str
    decided: bool
    scored: bool
    segments: list[str]
    slices: list[str]


def truth(label: ColumnElement[Any], kind: str, task: str) -> ColumnElement[Any]:
    """The label as `class_strings` (or `pd.to_numeric` for regression) makes it; NULL where
    that gives a missing value (a bad label)."""
    if task == "regression":
        value = sa.cast(label, sa.Double)
        return sa.case((sa.or_(value.is_(None), is_nan(value)), sa.null()), else_=value)
    if task != "binary_classification":
        return as_text(label)
    if kind == "text":
        text = sa.func.lower(sa.func.trim(label))
        return sa.case(
            (text.in_(_BINARY_TRUE), sa.literal("1")),
            (text.in_(_BINARY_FALSE), sa.literal("0")),
            else_=sa.null(),
        )
    number = sa.cast(sa.cast(label, sa.Integer) if kind == "bool" else label, sa.Double)
    return sa.case(
        (sa.or_(number.is_(None), is_nan(number)), sa.null()),
        (number != 0, sa.literal("1")),
        else_=sa.literal("0"),
    )


def label_query(
    cols: LabelColumns,
    source: Any,
    where: ColumnElement[bool],
    reference: ReferenceSummary,
    task: str,
    threshold: float,
    width: timedelta,
) -> tuple[sa.CompoundSelect[Any], LabelPlan]:
    """One statement: the reason counts, then per bucket (and segment value) every labelled
    part of the summary."""
    p = cols.preds
    y = truth(cols.label, cols.label_kind, task)
    inner: dict[str, ColumnElement[Any]] = {
        "b": sa.func.floor(epoch_seconds(p.ts) / width.total_seconds()),
        "lt": cols.label_ts,
        "y": y,
        "why": sa.case(
            (cols.label_id.is_(None), sa.literal("missing_id")),
            (cols.pred_id.is_(None), sa.literal(UNMATCHED)),
            (p.ts.is_(None), sa.literal("prediction_bad_timestamp")),
            (y.is_(None), sa.literal("bad_label")),
            else_=sa.null(),
        ),
    }
    lag = sa.cast(epoch_seconds(cols.label_ts) - epoch_seconds(p.ts), sa.Double)
    inner["lg"] = bin_index(sa.func.greatest(lag, 0.0), [float(e) for e in LAG_EDGES_S])
    decision = _decision(p, task, threshold) if task != "regression" else None
    if decision is not None:
        inner["d"] = sa.func.coalesce(decision, sa.literal("?"))
    scored = p.score is not None and task in ("binary_classification", "regression")
    if scored and task == "binary_classification":
        assert p.score is not None
        sc = _clean_score(sa.cast(p.score, sa.Double))
        inner["sc"] = sc
        inner["hb"] = sa.func.least(sa.func.floor(sc * SCORE_BINS), SCORE_BINS - 1)
        pos = sa.case((y == "1", 1.0), else_=0.0)
        clipped = sa.func.greatest(sa.func.least(sc, 1 - PROB_EPS), PROB_EPS)
        inner["pos"] = pos
        inner["ll"] = -(pos * sa.func.ln(clipped) + (1 - pos) * sa.func.ln(1 - clipped))
        inner["br"] = (sc - pos) * (sc - pos)
    if scored and task == "regression":
        assert p.score is not None
        sc = sa.cast(p.score, sa.Double)
        ok = sa.and_(sa.not_(not_finite(sc)), sa.not_(not_finite(y)))
        err = sa.case((ok, sc - y), else_=sa.null())
        inner["err"] = err
        inner["ape"] = sa.case((sa.and_(ok, y != 0), sa.func.abs(err / y)), else_=sa.null())
    for j, seg in enumerate(p.segments.values()):
        inner[f"s{j}"] = as_text(seg)
    slices = [] if task == "regression" else _slice_features(reference, p)
    for i, name in enumerate(slices):
        inner[f"f{i}"] = _slice_code(name, p.features[name], reference)
    if scored and task == "binary_classification" and slices:
        fitted = reference.numeric.get(SCORE_COLUMN)
        edges = score_edges(fitted.edges if fitted else None)
        sc = inner["sc"]
        cell = sa.case((y == "1", SLICE_SCORE_BINS), else_=0) + bin_index(sc, edges)
        inner["q"] = sa.case((sc.is_(None), sa.null()), else_=cell)
    if slices:
        right = sa.case((y == inner["d"], 1.0), else_=0.0) if "d" in inner else sa.literal(0.0)
        inner["rt"] = right
    rows = sa.select(*(v.label(k) for k, v in inner.items())).select_from(source).where(where)
    c = rows.cte("r").c
    kept = c.why.is_(None)
    branches = [_branch("why", None, None, [c.why], kept=None, k1=c.why)]
    groups: list[tuple[str, Any]] = [("", None)]
    groups += [(f"/{j}", c[f"s{j}"]) for j in range(len(p.segments))]
    for suffix, g in groups:
        whole = g is None
        newest = sa.func.max(c.lt) if whole else None
        branches.append(_branch(f"n{suffix}", c.b, g, [], kept, newest=newest))
        if "d" in c:
            branches.append(_branch(f"cf{suffix}", c.b, g, [c.y, c.d], kept, k1=c.y, k2=c.d))
        if "hb" in c:
            has = sa.and_(kept, c.sc.is_not(None))
            branches.append(_branch(f"ch{suffix}", c.b, g, [c.y, c.hb], has, k1=c.y, k2=c.hb))
            sums = [c.pos, c.sc, c.ll, _square(c.ll), c.br, _square(c.br)]
            branches.append(_branch(f"ps{suffix}", c.b, g, [], has, sums=sums))
        if "err" in c:
            has = sa.and_(kept, c.err.is_not(None))
            sums = [c.err, sa.func.abs(c.err), _square(c.err), _square(_square(c.err))]
            sums += [c.y, _square(c.y)]
            branches.append(_branch(f"rg{suffix}", c.b, g, [], has, sums=sums))
            has_ape = sa.and_(kept, c.ape.is_not(None))
            sums = [c.ape, _square(c.ape)]
            branches.append(_branch(f"ra{suffix}", c.b, g, [], has_ape, sums=sums))
    branches.append(_branch("lag", c.b, None, [c.lg], kept, k1=c.lg))
    for i in range(len(slices)):
        key = [c[f"f{i}"], *([c.q] if "q" in c else [])]
        k2 = c.q if "q" in c else None
        branches.append(_branch(f"f{i}", c.b, None, key, kept, k1=c[f"f{i}"], k2=k2, sums=[c.rt]))
    plan = LabelPlan(task, "d" in c, "hb" in c or "err" in c, list(p.segments), slices)
    return sa.union_all(*branches), plan


def _slice_features(reference: ReferenceSummary, p: PushdownColumns) -> list[str]:
    """The features the local fold slices: reference features the source has."""
    names = [*reference.numeric, *reference.categorical]
    return [n for n in names if not n.startswith("@") and n in p.features]


def _slice_code(
    name: str, column: ColumnElement[Any], reference: ReferenceSummary
) -> ColumnElement[Any]:
    """The row's slice index within the feature, as `summarize_slices.slice_codes` gives it."""
    keys = slice_keys(reference, name)
    if name in reference.numeric:
        value = sa.cast(column, sa.Double)
        missing = len(keys) - 1
        index = bin_index(value, reference.numeric[name].edges)
        grouped = sa.func.floor(index / float(NUMERIC_SLICE_WIDTH))
        return sa.case((not_finite(value), missing), else_=sa.func.least(grouped, missing - 1))
    kept = keys[:-2]
    text = as_text(column)
    whens: list[tuple[Any, Any]] = [(column.is_(None), len(kept) + 1)]
    whens += [(text == value, i) for i, value in enumerate(kept)]
    return sa.case(*whens, else_=len(kept))


def _branch(
    part: str,
    bucket: Any,
    segment: Any,
    group: list[Any],
    kept: Any,
    k1: Any = None,
    k2: Any = None,
    sums: list[Any] | None = None,
    newest: Any = None,
) -> sa.Select[Any]:
    """One GROUP BY with the union's common columns (NULL where a part has no such value)."""

    def text(value: Any, label: str) -> Any:
        if value is None:
            return sa.cast(sa.null(), sa.String).label(label)
        return as_text(value).label(label)

    values = list(sums or [])
    doubles = [
        sa.cast(sa.func.sum(values[i]) if i < len(values) else sa.null(), sa.Double).label(f"v{i}")
        for i in range(_DOUBLES)
    ]
    keys = [k for k in (bucket, segment) if k is not None] + group
    stmt = sa.select(
        sa.cast(bucket if bucket is not None else sa.null(), sa.BigInteger).label("bucket"),
        sa.literal(part, sa.String).label("part"),
        text(segment, "g"),
        text(k1, "k1"),
        text(k2, "k2"),
        sa.cast(sa.func.count(), sa.BigInteger).label("cnt"),
        *doubles,
        sa.cast(newest if newest is not None else sa.null(), sa.DateTime).label("newest"),
    )
    if kept is not None:
        stmt = stmt.where(kept)
    return stmt.group_by(*keys)


def _int(value: Any) -> int:
    return int(float(value))


def fold_labels(
    rows: list[dict[str, Any]],
    plan: LabelPlan,
    reference: ReferenceSummary,
    width: timedelta,
    now_bucket: datetime,
) -> tuple[dict[datetime, BucketSummary], dict[str, int]]:
    """The query's rows as bucket summaries, as `summarize_labels` builds them from rows; and
    the window's rows per reason (`""`: summarised)."""
    out: dict[datetime, BucketSummary] = {}
    reasons: dict[str, int] = {}
    by_part: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_part.setdefault(str(row["part"]), []).append(row)
    for row in by_part.get("why", []):
        reasons[row["k1"] or ""] = reasons.get(row["k1"] or "", 0) + int(row["cnt"])
    for reason, count in reasons.items():
        if reason not in ("", UNMATCHED):
            count_bad(out, now_bucket, reason, count)
    for row in by_part.get("n", []):
        summary = out.setdefault(EPOCH + int(row["bucket"]) * width, BucketSummary())
        summary.newest_label = _utc(row["newest"])
        summary.lag_hist = [0] * (len(LAG_EDGES_S) + 1)
    for row in by_part.get("lag", []):
        out[EPOCH + int(row["bucket"]) * width].lag_hist[_int(row["k1"])] += int(row["cnt"])
    groups: list[tuple[str, str | None]] = [("", None)]
    groups += [(f"/{j}", column) for j, column in enumerate(plan.segments)]
    for suffix, column in groups:

        def target(row: dict[str, Any], column: str | None = column) -> BucketSummary:
            summary = out.setdefault(EPOCH + int(row["bucket"]) * width, BucketSummary())
            if column is None:
                return summary
            value = "(missing)" if row["g"] is None else str(row["g"])
            kept = reference.segment_values.get(column)
            if kept is not None and value not in kept:
                value = OTHER
            return summary.segments.setdefault(f"{column}={value}", BucketSummary())

        _fold_group(by_part, suffix, plan, target)
    for i, name in enumerate(plan.slices):
        _fold_slices(by_part.get(f"f{i}", []), name, reference, plan, out, width)
    return out, reasons


def _fold_group(
    by_part: dict[str, list[dict[str, Any]]], suffix: str, plan: LabelPlan, target: Any
) -> None:
    """One grouping's labelled parts (the whole bucket, or one segment column's values)."""
    for row in by_part.get(f"n{suffix}", []):
        summary = target(row)
        summary.n_labelled += int(row["cnt"])
        if plan.scored and plan.task == "binary_classification":
            for key in PROB_KEYS:
                summary.prob_sums.setdefault(key, 0.0)
        if plan.scored and plan.task == "regression":
            for key in (*REGRESSION_KEYS, *APE_KEYS):
                summary.regression.setdefault(key, 0.0)
    for row in by_part.get(f"cf{suffix}", []):
        confusion = target(row).confusion
        key = f"{row['k1']}|{row['k2']}"
        confusion[key] = confusion.get(key, 0) + int(row["cnt"])
    for row in by_part.get(f"ch{suffix}", []):
        hist = target(row).class_score_hist.setdefault(str(row["k1"]), [0] * SCORE_BINS)
        hist[_int(row["k2"])] += int(row["cnt"])
    for part, keys in ((f"ps{suffix}", PROB_KEYS), (f"rg{suffix}", REGRESSION_KEYS)):
        for row in by_part.get(part, []):
            sums = target(row).prob_sums if part.startswith("ps") else target(row).regression
            sums[keys[0]] += float(row["cnt"])
            for i, key in enumerate(keys[1:]):
                sums[key] += float(row[f"v{i}"])
    for row in by_part.get(f"ra{suffix}", []):
        sums = target(row).regression
        sums["n_ape"] += float(row["cnt"])
        sums["sum_ape"] += float(row["v0"])
        sums["sum_ape_sq"] += float(row["v1"])


def _fold_slices(
    rows: list[dict[str, Any]],
    name: str,
    reference: ReferenceSummary,
    plan: LabelPlan,
    out: dict[datetime, BucketSummary],
    width: timedelta,
) -> None:
    """A feature's slice rows as the (slices x counts) block `fold_slices` builds, stored by
    its own `_store`: binary with a score, correct rows and the per-class score bins of the
    rows with a usable score (`slice_labels`); otherwise labelled and correct rows (`slices`)."""
    ns = len(slice_keys(reference, name))
    scored = plan.scored and plan.task == "binary_classification"
    size = 1 + 2 * SLICE_SCORE_BINS if scored else 2
    blocks: dict[int, np.ndarray] = {}
    for row in rows:
        block = blocks.setdefault(int(row["bucket"]), np.zeros((ns, size), dtype=np.int64))
        k, n, right = _int(row["k1"]), int(row["cnt"]), round(float(row["v0"]))
        if not scored:
            block[k, 0] += n
            block[k, 1] += right
        elif row["k2"] is not None:  # rows without a usable score are in no slice bin
            block[k, 0] += right
            block[k, 1 + _int(row["k2"])] += n
    field = "slice_labels" if scored else "slices"
    for bucket, block in sorted(blocks.items()):
        _store([out[EPOCH + bucket * width]], field, name, block[None], trim=scored)
