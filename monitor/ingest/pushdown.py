"""Prediction summaries computed inside the source: one GROUP BY bucket query per tick.

The query is built from the reference (bin edges, the features' kinds) with SQLAlchemy Core,
so each engine compiles it to its own SQL; only per-bucket counts and sums come back, never a
row. Its result is folded into the same `BucketSummary` the local path
(`monitor.ingest.summarize`) computes from rows, part for part: counts and the newest time,
the score histogram with its NaN and out-of-range counts, per numeric feature the reference-bin
counts and sums, count/sum/sum of squares/min/max and out-of-range counts, per categorical
feature (and the decision) the category and missing counts, and per segment the row counts.

The query is a UNION ALL of small GROUP BYs over one filtered subquery, all with the same
columns: (bucket, part, key, cnt, s, ss, lo, hi, newest, extra). `part` says which summary a row
belongs to. What the local path does that a GROUP BY cannot (duplicate ids within a read, a
timestamp that does not parse) is not counted here; `vigil config check` lists it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement

from monitor.core.reference import PREDICTION_COLUMN, SCORE_COLUMN, ReferenceSummary
from monitor.core.slices import score_edges
from monitor.core.summaries import SCORE_BINS, BucketSummary
from monitor.ingest.bucketing import OTHER
from monitor.ingest.pushdown_slices import fold_slice_parts, slice_branches
from monitor.ingest.pushdown_sql import as_text, bin_index, epoch_seconds, is_nan, not_finite

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MISSING_BIN = -1
OUTSIDE_BIN = -2
_BINARY_TRUE = ("1", "1.0", "true", "yes", "y", "t")
_BINARY_FALSE = ("0", "0.0", "false", "no", "n", "f")


@dataclass(frozen=True)
class PushdownColumns:
    """The source's columns as SQL expressions, by their role (None: not configured)."""

    ts: ColumnElement[Any]
    score: ColumnElement[Any] | None
    decision: ColumnElement[Any] | None
    decision_is_text: bool
    features: dict[str, ColumnElement[Any]]
    segments: dict[str, ColumnElement[Any]]


def summary_query(
    cols: PushdownColumns,
    source: Any,
    where: ColumnElement[bool],
    reference: ReferenceSummary,
    task: str,
    threshold: float,
    width: timedelta,
) -> tuple[sa.CompoundSelect[Any], dict[str, str]]:
    """One statement: per bucket, every part of the prediction summary; and which feature
    each part label (n3, c7) stands for, for `fold`."""
    width_s = width.total_seconds()
    inner: dict[str, ColumnElement[Any]] = {
        "b": sa.func.floor(epoch_seconds(cols.ts) / width_s).label("b"),
        "t": cols.ts.label("t"),
    }
    score = cols.score
    if score is not None:
        inner["sc"] = sa.cast(score, sa.Double).label("sc")
    decision = _decision(cols, task, threshold)
    if decision is not None:
        inner["dc"] = decision.label("dc")
    numeric: list[str] = []
    categorical: list[str] = []
    for i, name in enumerate([*reference.numeric, *reference.categorical]):
        expr = _feature_expr(name, cols, inner)
        if expr is None:
            continue
        if name in reference.numeric:
            inner[f"n{i}"] = sa.cast(expr, sa.Double).label(f"n{i}")
            numeric.append(f"n{i}")
        else:
            inner[f"c{i}"] = expr.label(f"c{i}")
            categorical.append(f"c{i}")
    for j, seg in enumerate(cols.segments.values()):
        inner[f"s{j}"] = as_text(seg).label(f"s{j}")
    names = [*reference.numeric, *reference.categorical]
    if "sc" in inner and task != "regression":
        inner["sb"] = _score_bin(inner["sc"].element).label("sb")
    slices = "sc" in inner and task == "binary_classification"
    if slices:  # the slice score bins of root-cause hints (`monitor.ingest.pushdown_slices`)
        fitted = reference.numeric.get(SCORE_COLUMN)
        tertiles = score_edges(fitted.edges if fitted else None)
        inner["tb"] = _bin(_clean_score(inner["sc"].element), tertiles).label("tb")
    for label in numeric:
        ref = reference.numeric[names[int(label[1:])]]
        inner[f"k{label[1:]}"] = _bin(inner[label].element, ref.edges).label(f"k{label[1:]}")
    # Bins are columns of the subquery, so each GROUP BY names a plain column (an expression
    # with literals in both SELECT and GROUP BY may not be matched by every engine).
    rows = sa.select(*inner.values()).select_from(source).where(where).cte("r")
    c = rows.c
    branches = [_branch(c.b, "n", None, sa.func.count(), newest=sa.func.max(c.t))]
    if "sb" in c:
        branches.append(_branch(c.b, "score", c.sb, sa.func.count(), group=[c.sb]))
    for label in numeric:
        ref = reference.numeric[names[int(label[1:])]]
        branches.append(
            _numeric_branch(c.b, label, c[label], c[f"k{label[1:]}"], ref.minimum, ref.maximum)
        )
    for label in categorical:
        key = c[label]
        branches.append(_branch(c.b, label, key, sa.func.count(), group=[key]))
    for j in range(len(cols.segments)):
        key = c[f"s{j}"]
        branches.append(_branch(c.b, f"s{j}", key, sa.func.count(), group=[key]))
    if slices:
        plain = [p for p in (*numeric, *categorical) if not names[int(p[1:])].startswith("@")]
        branches += slice_branches(c, plain, len(cols.segments), _slice_branch)
    parts = {label: names[int(label[1:])] for label in (*numeric, *categorical)}
    return sa.union_all(*branches), parts


def _slice_branch(
    bucket: Any, part: str, key: Any, cnt: Any, group: list[Any], extra: Any
) -> sa.Select[Any]:
    return _branch(bucket, part, key, cnt, group=group, extra=extra)


def _feature_expr(
    name: str, cols: PushdownColumns, inner: dict[str, ColumnElement[Any]]
) -> ColumnElement[Any] | None:
    if name == SCORE_COLUMN:
        return None if "sc" not in inner else _clean_score(inner["sc"].element)
    if name == PREDICTION_COLUMN:
        return None if "dc" not in inner else inner["dc"].element
    expr = cols.features.get(name)
    return None if expr is None else expr


def _clean_score(score: ColumnElement[Any]) -> ColumnElement[Any]:
    """Out-of-range and NaN scores are missing, as `probabilities` makes them."""
    return sa.case((sa.or_(is_nan(score), score < 0, score > 1), sa.null()), else_=score)


def _decision(cols: PushdownColumns, task: str, threshold: float) -> ColumnElement[Any] | None:
    """The predicted class as text, as `monitor.ingest.classes.decisions` makes it."""
    if cols.decision is not None:
        d = cols.decision
        if task != "binary_classification":
            return as_text(d)
        if cols.decision_is_text:
            text = sa.func.lower(sa.func.trim(d))
            return sa.case(
                (text.in_(_BINARY_TRUE), sa.literal("1")),
                (text.in_(_BINARY_FALSE), sa.literal("0")),
                else_=sa.null(),
            )
        return sa.case((d.is_(None), sa.null()), (d != 0, sa.literal("1")), else_=sa.literal("0"))
    if cols.score is not None and task == "binary_classification":
        s = sa.cast(cols.score, sa.Double)
        return sa.case(
            (sa.or_(s.is_(None), is_nan(s)), sa.null()),
            (s >= threshold, sa.literal("1")),
            else_=sa.literal("0"),
        )
    return None


def _score_bin(score: ColumnElement[Any]) -> ColumnElement[Any]:
    """SCORE_BINS equal bins of [0, 1]; NaN and missing, then out of range, set apart."""
    return sa.case(
        (sa.or_(score.is_(None), is_nan(score)), MISSING_BIN),
        (sa.or_(score < 0, score > 1), OUTSIDE_BIN),
        else_=sa.func.least(sa.func.floor(score * SCORE_BINS), SCORE_BINS - 1),
    )


def _bin(value: ColumnElement[Any], edges: list[float]) -> ColumnElement[Any]:
    """Index of the reference bin (numpy's searchsorted, side right); missing set apart."""
    return sa.case((not_finite(value), MISSING_BIN), else_=bin_index(value, edges))


def _numeric_branch(
    bucket: Any,
    part: str,
    value: ColumnElement[Any],
    vbin: ColumnElement[Any],
    low: float | None,
    high: float | None,
) -> sa.Select[Any]:
    outside: Any = sa.literal(0)
    if low is not None and high is not None:
        outside = sa.func.sum(sa.case((sa.or_(value < low, value > high), 1), else_=0))
    return _branch(
        bucket,
        part,
        vbin,
        sa.func.count(),
        group=[vbin],
        s=sa.func.sum(value),
        ss=sa.func.sum(_square(value)),
        lo=sa.func.min(value),
        hi=sa.func.max(value),
        extra=outside,
    )


def _square(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """v², without PostgreSQL's underflow and overflow errors (numpy gives 0 and inf): one
    row with a value of 1e-200 must not fail the tick."""
    size = sa.func.abs(value)
    inf = sa.cast(sa.literal_column("'Infinity'"), sa.Double)
    return sa.case((size < 1e-150, 0.0), (size > 1e150, inf), else_=value * value)


def _branch(
    bucket: Any,
    part: str,
    key: Any,
    cnt: Any,
    group: list[Any] | None = None,
    s: Any = None,
    ss: Any = None,
    lo: Any = None,
    hi: Any = None,
    newest: Any = None,
    extra: Any = None,
) -> sa.Select[Any]:
    """One GROUP BY with the union's common columns (NULL where a part has no such value)."""

    def col(value: Any, kind: Any, label: str) -> Any:
        return sa.cast(value if value is not None else sa.null(), kind).label(label)

    return sa.select(
        col(bucket, sa.BigInteger, "bucket"),
        sa.literal(part, sa.String).label("part"),
        col(key, sa.String, "key") if key is None else as_text(key).label("key"),
        col(cnt, sa.BigInteger, "cnt"),
        col(s, sa.Double, "s"),
        col(ss, sa.Double, "ss"),
        col(lo, sa.Double, "lo"),
        col(hi, sa.Double, "hi"),
        col(newest, sa.DateTime, "newest"),
        col(extra, sa.BigInteger, "extra"),
    ).group_by(bucket, *(group or []))


def fold(
    rows: list[dict[str, Any]],
    reference: ReferenceSummary,
    features: dict[str, str],
    absent: set[str],
    segments: list[str],
    width: timedelta,
    task: str,
) -> dict[datetime, BucketSummary]:
    """The query's rows as bucket summaries, exactly as the local fold builds them.

    `features` maps the part label (n3, c7) back to the feature's name; `absent` are reference
    features the source does not have (counted for every row, as the local path does).
    """
    out: dict[datetime, BucketSummary] = {}
    by_part: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_part.setdefault(str(row["part"]), []).append(row)

    def summary(b: Any) -> BucketSummary:
        return out[EPOCH + int(b) * width]

    for row in by_part.get("n", []):
        start = EPOCH + int(row["bucket"]) * width
        s = out.setdefault(start, BucketSummary())
        s.n = int(row["cnt"])
        s.newest_prediction = _utc(row["newest"])
        for name in absent:
            s.absent[name] = s.n
    if task != "regression" and "score" in by_part:
        for s in out.values():
            s.score_hist = [0] * SCORE_BINS
        for row in by_part["score"]:
            s, k, n = summary(row["bucket"]), int(float(row["key"])), int(row["cnt"])
            if k == MISSING_BIN:
                s.bad["nan_score"] = s.bad.get("nan_score", 0) + n
            elif k == OUTSIDE_BIN:
                s.bad["score_out_of_range"] = s.bad.get("score_out_of_range", 0) + n
            else:
                s.score_hist[k] += n
    for part, name in features.items():
        if part.startswith("n"):
            _fold_numeric(name, by_part.get(part, []), reference, out, summary)
        else:
            _fold_categorical(name, by_part.get(part, []), out, summary)
    for j, column in enumerate(segments):
        kept = reference.segment_values.get(column)
        for row in by_part.get(f"s{j}", []):
            value = "(missing)" if row["key"] is None else str(row["key"])
            if kept is not None and value not in kept:
                value = OTHER
            seg = summary(row["bucket"]).segments.setdefault(f"{column}={value}", BucketSummary())
            seg.n += int(row["cnt"])
    if task == "binary_classification":
        fold_slice_parts(by_part, reference, features, segments, summary)
    return out


def _fold_numeric(
    name: str,
    rows: list[dict[str, Any]],
    reference: ReferenceSummary,
    out: dict[datetime, BucketSummary],
    summary: Any,
) -> None:
    nbins = len(reference.numeric[name].edges) + 1
    for s in out.values():
        s.numeric[name] = [0] * nbins
        s.numeric_sums[name] = [0.0] * nbins
        s.missing[name] = 0
    stats: dict[int, list[float]] = {}
    for row in sorted(rows, key=lambda r: (int(r["bucket"]), int(float(r["key"])))):
        s, k, n = summary(row["bucket"]), int(float(row["key"])), int(row["cnt"])
        if k == MISSING_BIN:
            s.missing[name] += n
            continue
        s.numeric[name][k] = n
        s.numeric_sums[name][k] = float(row["s"])
        if row["extra"]:
            s.out_of_range[name] = s.out_of_range.get(name, 0) + int(row["extra"])
        acc = stats.setdefault(int(row["bucket"]), [0.0, 0.0, 0.0, float("inf"), float("-inf")])
        acc[0] += n
        acc[2] += float(row["ss"])
        acc[3] = min(acc[3], float(row["lo"]))
        acc[4] = max(acc[4], float(row["hi"]))
    for b, acc in stats.items():
        s = summary(b)
        acc[1] = float(sum(s.numeric_sums[name]))
        s.numeric_stats[name] = acc


def _fold_categorical(
    name: str,
    rows: list[dict[str, Any]],
    out: dict[datetime, BucketSummary],
    summary: Any,
) -> None:
    for s in out.values():
        s.missing[name] = 0
        s.categorical[name] = {}
    for row in rows:
        s, n = summary(row["bucket"]), int(row["cnt"])
        if row["key"] is None:
            s.missing[name] += n
        else:
            s.categorical[name][str(row["key"])] = n


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
