"""Folds parsed rows into per-bucket summaries, vectorised with numpy.

Bad values are counted in `bad` (by reason) instead of raising: a NaN score, an unparsable
or future timestamp, a duplicate id or a label for an unknown prediction never stops a tick.
Rows whose own time is unknown are counted in the bucket of the tick's time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

import numpy as np
import pandas as pd

from monitor.batches import LabelBatch, PredictionBatch
from monitor.reference import ReferenceSummary, category_strings
from monitor.summaries import SCORE_BINS, BucketSummary

FUTURE_TOLERANCE = timedelta(minutes=5)
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


def bucket_start(ts: datetime, width: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=ts.tzinfo)
    return ts - (ts - epoch) % width


def binary_classes(values: pd.Series) -> pd.Series:
    """Map 1/0, True/False, 'yes'/'no' to '1'/'0'; anything else becomes NA (counted as bad)."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        numeric = pd.to_numeric(values, errors="coerce")
        out = pd.Series(np.where(numeric != 0, "1", "0"), index=values.index, dtype=object)
        return out.where(numeric.notna())
    text = values.astype(str).str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype=object)
    out[text.isin(_TRUE)] = "1"
    out[text.isin(_FALSE)] = "0"
    return out


def class_strings(values: pd.Series, task: str) -> pd.Series:
    if task == "binary_classification":
        return binary_classes(values)
    strings = category_strings(values)
    return strings.reindex(values.index)


def decisions(
    decision: pd.Series | None, score: pd.Series | None, task: str, threshold: float
) -> pd.Series | None:
    """The predicted class: the logged decision when there is one, else score >= threshold."""
    if decision is not None:
        return class_strings(decision, task)
    if score is not None and task == "binary_classification":
        out = pd.Series(np.where(score >= threshold, "1", "0"), index=score.index, dtype=object)
        return out.where(score.notna())
    return None


def _score_bins(score: np.ndarray) -> np.ndarray:
    return np.clip((score * SCORE_BINS).astype(np.int64), 0, SCORE_BINS - 1)


def _bucket_codes(ts: pd.Series, width: timedelta) -> tuple[np.ndarray, list[datetime]]:
    starts = ts.dt.floor(pd.Timedelta(width))
    codes, uniques = pd.factorize(starts, sort=True)
    return codes, [u.to_pydatetime() for u in uniques]


def _grid_counts(codes: np.ndarray, bins: np.ndarray, n_buckets: int, n_bins: int) -> np.ndarray:
    flat = np.bincount(codes * n_bins + bins, minlength=n_buckets * n_bins)
    return flat.reshape(n_buckets, n_bins)


def summarize_predictions(
    batch: PredictionBatch,
    reference: ReferenceSummary,
    task: str,
    threshold: float,
    width: timedelta,
    now: datetime,
) -> dict[datetime, BucketSummary]:
    out: dict[datetime, BucketSummary] = {}
    now_bucket = bucket_start(now, width)

    def bad(start: datetime, reason: str, count: int) -> None:
        if count:
            summary = out.setdefault(start, BucketSummary())
            summary.bad[reason] = summary.bad.get(reason, 0) + count

    ts = batch.ts
    keep = ts.notna().to_numpy()
    bad(now_bucket, "bad_timestamp", int((~keep).sum()))
    future = (ts > pd.Timestamp(now + FUTURE_TOLERANCE)).to_numpy() & keep
    bad(now_bucket, "future_timestamp", int(future.sum()))
    keep &= ~future
    dup = batch.ids.duplicated().to_numpy() & keep
    bad(now_bucket, "duplicate_id", int(dup.sum()))
    keep &= ~dup
    if not keep.any():
        return out

    ts = ts[keep]
    codes, starts = _bucket_codes(ts, width)
    nb = len(starts)
    summaries = [out.setdefault(s, BucketSummary()) for s in starts]
    counts = np.bincount(codes, minlength=nb)
    newest = ts.groupby(codes).max()
    for i, summary in enumerate(summaries):
        summary.n += int(counts[i])
        summary.newest_prediction = newest.iloc[i].to_pydatetime()

    if batch.score is not None and task != "regression":
        score = pd.to_numeric(batch.score[keep], errors="coerce").to_numpy(dtype=float)
        finite = np.isfinite(score)
        nan_per_bucket = np.bincount(codes[~finite], minlength=nb)
        grid = _grid_counts(codes[finite], _score_bins(score[finite]), nb, SCORE_BINS)
        for i, summary in enumerate(summaries):
            if nan_per_bucket[i]:
                summary.bad["nan_score"] = summary.bad.get("nan_score", 0) + int(nan_per_bucket[i])
            summary.score_hist = [int(c) for c in grid[i]]

    features = batch.features[keep]
    for name, ref in reference.numeric.items():
        values = (
            pd.to_numeric(features[name], errors="coerce").to_numpy(dtype=float)
            if name in features
            else np.full(len(ts), np.nan)
        )
        present = np.isfinite(values)
        edges = np.asarray(ref.edges, dtype=float)
        bins = np.searchsorted(edges, values[present], side="right")
        grid = _grid_counts(codes[present], bins, nb, edges.size + 1)
        missing = np.bincount(codes[~present], minlength=nb)
        for i, summary in enumerate(summaries):
            summary.numeric[name] = [int(c) for c in grid[i]]
            summary.missing[name] = int(missing[i])
    for name in reference.categorical:
        column = features[name] if name in features else pd.Series(np.nan, index=ts.index)
        present = column.notna().to_numpy()
        missing = np.bincount(codes[~present], minlength=nb)
        strings = category_strings(column)
        grouped = (
            pd.Series(1, index=strings.index).groupby([codes[present], strings.to_numpy()]).sum()
        )
        for i, summary in enumerate(summaries):
            summary.categorical[name] = {}
            summary.missing[name] = int(missing[i])
        for key, count in grouped.items():
            code, category = cast(tuple[int, str], key)
            summaries[int(code)].categorical[name][str(category)] = int(count)
    return out


def summarize_labels(
    batch: LabelBatch, task: str, threshold: float, width: timedelta, now: datetime
) -> dict[datetime, BucketSummary]:
    """Labels update the bucket of their prediction's time, where late labels belong."""
    out: dict[datetime, BucketSummary] = {}
    now_bucket = bucket_start(now, width)

    def bad(reason: str, count: int) -> None:
        if count:
            summary = out.setdefault(now_bucket, BucketSummary())
            summary.bad[reason] = summary.bad.get(reason, 0) + count

    known = batch.predicted_at.notna().to_numpy()
    bad("unknown_label_id", int((~known).sum()))
    dup = batch.ids.duplicated().to_numpy() & known
    bad("duplicate_label", int(dup.sum()))
    keep = known & ~dup
    if task == "regression":
        label_num = pd.to_numeric(batch.label, errors="coerce")
        valid = label_num.notna().to_numpy()
        labels: pd.Series = label_num
    else:
        labels = class_strings(batch.label, task)
        valid = labels.notna().to_numpy()
    bad("bad_label", int((keep & ~valid).sum()))
    keep &= valid
    if not keep.any():
        return out

    ts = batch.predicted_at[keep]
    codes, starts = _bucket_codes(ts, width)
    nb = len(starts)
    summaries = [out.setdefault(s, BucketSummary()) for s in starts]
    counts = np.bincount(codes, minlength=nb)
    newest = batch.labeled_at[keep].groupby(codes).max()
    for i, summary in enumerate(summaries):
        summary.n_labelled += int(counts[i])
        latest = newest.iloc[i]
        summary.newest_label = latest.to_pydatetime() if pd.notna(latest) else None

    if task == "regression":
        _fold_regression(batch, labels, keep, codes, summaries)
        return out

    truth = labels[keep].to_numpy()
    predicted = decisions(batch.decision, batch.score, task, threshold)
    if predicted is not None:
        pred = predicted[keep].fillna("?").to_numpy()
        pairs = pd.Series(1, index=range(len(codes))).groupby([codes, truth, pred]).sum()
        for key, count in pairs.items():
            code, t, p = cast(tuple[int, str, str], key)
            confusion = summaries[int(code)].confusion
            confusion[f"{t}|{p}"] = confusion.get(f"{t}|{p}", 0) + int(count)
    if batch.score is not None and task == "binary_classification":
        score = pd.to_numeric(batch.score[keep], errors="coerce").to_numpy(dtype=float)
        finite = np.isfinite(score)
        for cls in ("0", "1"):
            mask = finite & (truth == cls)
            grid = _grid_counts(codes[mask], _score_bins(score[mask]), nb, SCORE_BINS)
            for i, summary in enumerate(summaries):
                if grid[i].any():
                    summary.class_score_hist[cls] = [int(c) for c in grid[i]]
    return out


def _fold_regression(
    batch: LabelBatch,
    labels: pd.Series,
    keep: np.ndarray,
    codes: np.ndarray,
    summaries: list[BucketSummary],
) -> None:
    if batch.score is None:
        return
    y = labels[keep].to_numpy(dtype=float)
    pred = pd.to_numeric(batch.score[keep], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(pred)
    err = pred - y
    nb = len(summaries)

    def per_bucket(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.bincount(codes[mask], weights=values[mask], minlength=nb)

    nonzero = ok & (y != 0)
    ape = np.zeros_like(y)
    ape[nonzero] = np.abs(err[nonzero] / y[nonzero])
    sums = {
        "n": per_bucket(np.ones_like(y), ok),
        "sum_err": per_bucket(err, ok),
        "sum_abs_err": per_bucket(np.abs(err), ok),
        "sum_sq_err": per_bucket(err**2, ok),
        "sum_y": per_bucket(y, ok),
        "sum_y_sq": per_bucket(y**2, ok),
        "n_ape": per_bucket(np.ones_like(y), nonzero),
        "sum_ape": per_bucket(ape, nonzero),
    }
    for i, summary in enumerate(summaries):
        for key, values in sums.items():
            summary.regression[key] = summary.regression.get(key, 0.0) + float(values[i])
