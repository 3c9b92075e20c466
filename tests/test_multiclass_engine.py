"""A three-class model with `scores:` through the real engine, on SQLite and on PostgreSQL:
its class score columns are read with the predictions, joined to labels (those that arrive
before their prediction too), folded into stored buckets and turned into metrics."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn import metrics as skm

from monitor.core.summaries import BucketSummary, merge_all
from monitor.core.values import MetricValue
from monitor.engine.runtime import Runtime, open_runtime
from monitor.engine.tick import TickResult, tick
from monitor.store.state import load_buckets
from tests.builders import build_config
from tests.multiclass_data import CLASSES, COLUMNS, labelled_arrays, multiclass_rows
from tests.test_multiclass_summaries import summarise
from tests.test_quality_metrics import NOW, T0

SCORE_COLUMNS = list(COLUMNS.values())


def _write(engine: sa.Engine, table: str, frame: pd.DataFrame) -> None:
    frame.to_sql(table, engine, if_exists="append", index=False)


def _naive(series: pd.Series) -> pd.Series:
    return series.dt.tz_convert("UTC").dt.tz_localize(None)


def predictions_of(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows[["id", "decision", *SCORE_COLUMNS]].copy()
    out["ts"] = _naive(rows["ts"])
    return out


def labels_of(rows: pd.DataFrame) -> pd.DataFrame:
    labelled = rows[rows["label"].notna()]
    return pd.DataFrame(
        {"id": labelled["id"], "at": _naive(labelled["labeled_at"]), "queue": labelled["label"]}
    )


def model_config(store_url: str, source_url: str, slos: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "store": store_url,
        "sources": {"src": {"url": source_url, "chunk_size": 1000}},
        "models": {
            "m": {
                "source": "src",
                "task": "multiclass_classification",
                "bucket": "1h",
                "predictions": {
                    "table": "routed",
                    "id": "id",
                    "timestamp": "ts",
                    "prediction": "decision",
                    "scores": COLUMNS,
                },
                "labels": {"table": "resolved", "id": "id", "timestamp": "at", "label": "queue"},
                "reference": {"table": "reference_rows"},
                "slos": slos,
            }
        },
        "routing": {"default": ["chat"]},
        "receivers": {"chat": {"slack": {"channel": "#ml-oncall"}}},
    }


SLOS = [
    {"metric": metric, "window": "48h", "objective": objective, "min_samples": 20}
    for metric, objective in (
        ("accuracy", ">= 0.1"),
        ("roc_auc", ">= 0.5"),
        ("weighted_roc_auc", ">= 0.5"),
        ("log_loss", "< 5"),
        ("brier", "< 1.5"),
        ("ece", "< 0.5"),
        ("estimated.roc_auc", ">= 0.5"),
        ("estimated.accuracy", ">= 0.1"),
    )
]


@pytest.fixture
def stream(two_db_urls: tuple[str, str]) -> Iterator[tuple[sa.Engine, pd.DataFrame]]:
    """A source with a labelled reference and one day of routed tickets; the labels of the
    last 200 tickets are written, but not those tickets (their predictions come late)."""
    engine = sa.create_engine(two_db_urls[1])
    rng = np.random.default_rng(41)
    reference = multiclass_rows(rng, 3000, labelled=1.0)
    _write(
        engine,
        "reference_rows",
        reference[["decision", *SCORE_COLUMNS, "label"]].rename(columns={"label": "queue"}),
    )
    rows = multiclass_rows(rng, 2400).sort_values("ts", ignore_index=True)
    _write(engine, "routed", predictions_of(rows.iloc[:-200]))
    _write(engine, "resolved", labels_of(rows))
    yield engine, rows
    engine.dispose()


def run(
    two_db_urls: tuple[str, str],
    tmp_path: Path,
    engine: sa.Engine,
    rows: pd.DataFrame,
    slos: list[dict[str, Any]],
) -> tuple[TickResult, BucketSummary]:
    """Two ticks: the first holds the labels of unseen tickets, the second (after those
    tickets are written) joins them; returns the second tick and the stored window."""
    config = build_config(model_config(*two_db_urls, slos))
    rt: Runtime = open_runtime(config, tmp_path)
    try:
        late = int(rows["label"].iloc[-200:].notna().sum())
        first = tick(rt, "m", NOW + timedelta(hours=22))
        assert first.intake.outcomes["labels.held"] == late
        _write(engine, "routed", predictions_of(rows.iloc[-200:]))
        result = tick(rt, "m", NOW + timedelta(hours=22, minutes=5))
        assert result.intake.outcomes["held_labels.summarised"] == late
        with rt.sessions() as session:
            stored = load_buckets(session, "m", T0 - timedelta(days=1), NOW + timedelta(days=1))
        return result, merge_all(summary for _, summary in stored)
    finally:
        rt.close()


def test_class_scores_reach_the_stored_buckets(
    two_db_urls: tuple[str, str], tmp_path: Path, stream: tuple[sa.Engine, pd.DataFrame]
) -> None:
    """Every prediction's class scores, and every label's (held ones included), are in the
    store exactly as folding the raw rows in memory gives them, and the tick computes and
    judges ROC AUC (per class and macro, within 0.005 of sklearn), log loss (exact), Brier,
    ECE and the estimates from them."""
    engine, rows = stream
    result, stored = run(two_db_urls, tmp_path, engine, rows, SLOS)
    expected = summarise(rows)
    assert stored.n == len(rows)
    assert stored.n_labelled == int(rows["label"].notna().sum())
    assert set(stored.scores_hist) == {f"{c}|{flag}" for c in CLASSES for flag in (0, 1)}
    assert stored.scores_hist == expected.scores_hist
    assert stored.ovr_score_hist == expected.ovr_score_hist
    assert stored.prob_sums == pytest.approx(expected.prob_sums, rel=1e-9)

    # ... and the tick judged the multiclass SLOs on them, per class and averaged
    values = {(v.metric, v.feature): v for v in result.values}
    truth, probs = labelled_arrays(rows)
    order = np.argsort(CLASSES)
    macro = skm.roc_auc_score(truth, probs[:, order], multi_class="ovr", labels=sorted(CLASSES))
    assert abs(_value(values, "roc_auc") - macro) < 0.005  # binned, as in the metric tests
    loss = skm.log_loss(truth, probs[:, order], labels=sorted(CLASSES))
    assert _value(values, "log_loss") == pytest.approx(loss, rel=1e-9)
    for metric in ("roc_auc", "ece", "estimated.roc_auc"):
        assert {f for m, f in values if m == metric} == {None, *(f"class={c}" for c in CLASSES)}
    for metric in ("weighted_roc_auc", "brier", "estimated.accuracy"):
        assert values[(metric, None)].value is not None
    verdicts = {(v.slo.metric, v.feature) for v in result.verdicts}
    assert ("roc_auc", "class=bird") in verdicts and ("estimated.roc_auc", "") in verdicts


def _value(values: dict[tuple[str, str | None], MetricValue], metric: str) -> float:
    found = values[(metric, None)].value
    assert found is not None, metric
    return found
