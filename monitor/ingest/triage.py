"""Decides, for each row read, what becomes of it, so every row lands in exactly one outcome:
summarised, counted bad by one reason, held (a label waiting for its prediction) or already
counted (a row an earlier tick counted as bad).

The store's memory of rows is reached through a `Claim` callable, so this module stays free
of the store: `claim(kind, keys, times)` records keys and answers which were new.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from monitor.ingest.batches import PredictionBatch
from monitor.ingest.rowkeys import id_keys, raw_time_keys

FUTURE_TOLERANCE = timedelta(minutes=5)
"""A prediction timed more than this after the tick's clock is future-dated (clock skew)."""

SEEN_PREDICTION, SEEN_FUTURE, SEEN_BAD_TIME = "pred", "future", "bad_ts"
SEEN_LABEL_BAD_TIME = "lbad_ts"
LABEL_BAD_TIME = "label_bad_timestamp"
"""A label whose `labeled_at` is NULL or no time: counted bad once, never summarised."""

Claim = Callable[[str, np.ndarray, Sequence[datetime | None] | pd.Series | None], np.ndarray]
"""(kind, distinct keys, their row times) -> True where the store did not have the key. The
times come as a Series (NaT for none), converted by the store in one pass, not per row."""

SUMMARISED, ALREADY_COUNTED, HELD, DEFERRED = "summarised", "already_counted", "held", "deferred"


@dataclass
class Triage:
    """What to do with each row of a batch."""

    keep: np.ndarray
    """Rows to summarise."""
    bad: dict[str, int] = field(default_factory=dict)
    """Rows not summarised, by reason (counted in the data-quality metrics)."""
    flags: dict[str, int] = field(default_factory=dict)
    """Summarised rows that are also counted as a data-quality problem (`future_timestamp`:
    summarised in their own, future, bucket and counted once as future-dated)."""
    outcomes: dict[str, int] = field(default_factory=dict)
    """Every row read, by outcome: `summarised`, `bad.<reason>`, `already_counted`."""
    future: np.ndarray | None = None
    """The rows counted `future_timestamp` now (their buckets are noted as `future_due`)."""


def _add(counts: dict[str, int], key: str, n: int) -> None:
    if n:
        counts[key] = counts.get(key, 0) + n


def _claim_rows(
    claim: Claim | None,
    kind: str,
    keys: np.ndarray,
    mask: np.ndarray,
    times: pd.Series | None = None,
) -> np.ndarray:
    """Claim the keys of the rows in `mask`; True for rows whose key is new (the first row of
    a repeated key within the batch is the one that may be new)."""
    new = np.zeros(mask.size, dtype=bool)
    rows = np.flatnonzero(mask)
    if rows.size == 0:
        return new
    if claim is None:
        new[rows] = True
        return new
    unique, first = np.unique(keys[rows], return_index=True)
    firsts = rows[first]
    stamps = times.iloc[firsts].reset_index(drop=True) if times is not None else None
    fresh = claim(kind, unique, stamps)
    new[firsts[fresh]] = True
    return new


def triage_predictions(batch: PredictionBatch, now: datetime, claim: Claim | None) -> Triage:
    """Sort a batch of predictions read incrementally.

    - a timestamp that cannot be read (NULL, not a time, an impossible date): `bad_timestamp`,
      unless an earlier tick's probe already counted that row (`already_counted`);
    - no id: `missing_id`;
    - an id seen before, in this batch or within the duplicate horizon: `duplicate_id`;
    - a time in the future: summarised in its own bucket (so it counts when its time comes,
      once) and counted once as `future_timestamp`.
    Without `claim` (no store), duplicates are found within the batch only.
    """
    n = len(batch)
    out = Triage(keep=np.zeros(n, dtype=bool))
    if n == 0:
        return out
    ts = batch.ts
    has_time = ts.notna().to_numpy()
    has_id = batch.ids.notna().to_numpy()

    if not has_time.all():
        raw = batch.raw_ts if batch.raw_ts is not None else batch.ts
        bad_keys = raw_time_keys(batch.ids, raw)
        new = _claim_rows(claim, SEEN_BAD_TIME, bad_keys, ~has_time)
        _add(out.bad, "bad_timestamp", int(new.sum()))
        _add(out.outcomes, ALREADY_COUNTED, int((~has_time & ~new).sum()))
    no_id = has_time & ~has_id
    _add(out.bad, "missing_id", int(no_id.sum()))

    candidates = has_time & has_id
    keys = id_keys(batch.ids)
    fresh = _claim_rows(claim, SEEN_PREDICTION, keys, candidates, ts)
    if claim is None:  # within the batch only
        fresh = candidates & ~pd.Series(keys).duplicated().to_numpy()
    dup = candidates & ~fresh
    _add(out.bad, "duplicate_id", int(dup.sum()))
    out.keep = candidates & fresh

    future = out.keep & (ts > pd.Timestamp(now + FUTURE_TOLERANCE)).to_numpy()
    if future.any():
        out.future = _claim_rows(claim, SEEN_FUTURE, keys, future, ts)
        _add(out.flags, "future_timestamp", int(out.future.sum()))

    _add(out.outcomes, SUMMARISED, int(out.keep.sum()))
    for reason, count in out.bad.items():
        _add(out.outcomes, f"bad.{reason}", count)
    return out


def triage_unread(
    ids: pd.Series, raw: pd.Series, ts: pd.Series, now: datetime, claim: Claim | None
) -> Triage:
    """Sort the rows the incremental read can never reach, found by the source's probe:
    rows with no usable timestamp are counted `bad_timestamp`, future-dated rows are counted
    `future_timestamp` and left for the incremental read to summarise when their time comes
    (`deferred`). Only rows no earlier tick counted are read; the rest are not this tick's."""
    out = Triage(keep=np.zeros(len(ids), dtype=bool))
    if len(ids) == 0:
        return out
    has_time = ts.notna().to_numpy()
    new_bad = _claim_rows(claim, SEEN_BAD_TIME, raw_time_keys(ids, raw), ~has_time)
    _add(out.bad, "bad_timestamp", int(new_bad.sum()))
    _add(out.outcomes, "bad.bad_timestamp", int(new_bad.sum()))
    future = (
        has_time & ids.notna().to_numpy() & (ts > pd.Timestamp(now + FUTURE_TOLERANCE)).to_numpy()
    )
    new_future = out.future = _claim_rows(claim, SEEN_FUTURE, id_keys(ids), future, ts)
    _add(out.flags, "future_timestamp", int(new_future.sum()))
    _add(out.outcomes, DEFERRED, int(new_future.sum()))
    return out


def triage_label_times(
    ids: pd.Series, raw: pd.Series | None, labeled_at: pd.Series, claim: Claim | None
) -> Triage:
    """Sort labels by their own time: one with a usable `labeled_at` is kept, one without is
    counted `label_bad_timestamp` the first time any reader (the incremental read or the
    probe) meets it, and `already_counted` after that. Rows are known by id and raw value."""
    out = Triage(keep=labeled_at.notna().to_numpy())
    unusable = ~out.keep
    if unusable.any():
        keys = raw_time_keys(ids, raw if raw is not None else labeled_at)
        new = _claim_rows(claim, SEEN_LABEL_BAD_TIME, keys, unusable)
        _add(out.bad, LABEL_BAD_TIME, int(new.sum()))
        _add(out.outcomes, f"bad.{LABEL_BAD_TIME}", int(new.sum()))
        _add(out.outcomes, ALREADY_COUNTED, int((unusable & ~new).sum()))
    return out
