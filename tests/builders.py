"""Builders for test data: a source database with predictions and labels, and configs for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
import yaml

from alerts.notifiers.base import Alert, EventKind, Notification
from monitor.config import VigilConfig, parse_config
from monitor.core.objectives import parse_objective

T0 = datetime(2026, 10, 5, tzinfo=UTC)
metadata = sa.MetaData()
predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("request_id", sa.Integer, primary_key=True),
    sa.Column("predicted_at", sa.DateTime, nullable=False, index=True),
    sa.Column("amount", sa.Float),
    sa.Column("country", sa.String(10)),
    sa.Column("score", sa.Float),
    sa.Column("decision", sa.Integer),
)
labels = sa.Table(
    "labels",
    metadata,
    sa.Column("request_id", sa.Integer),
    sa.Column("labeled_at", sa.DateTime, nullable=False, index=True),
    sa.Column("is_fraud", sa.Integer),
)
reference = sa.Table(
    "reference_rows",
    metadata,
    sa.Column("amount", sa.Float),
    sa.Column("country", sa.String(10)),
)


def naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


def create_source(url: str, n_reference: int = 2000, seed: int = 1) -> sa.Engine:
    """An empty predictions/labels source plus a reference table of `n_reference` rows."""
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    rng = np.random.default_rng(seed)
    with engine.begin() as conn:
        conn.execute(
            reference.insert(),
            [
                {"amount": float(a), "country": str(c)}
                for a, c in zip(
                    rng.lognormal(3, 1, n_reference),
                    rng.choice(["DE", "FR", "NL"], n_reference, p=[0.5, 0.3, 0.2]),
                    strict=True,
                )
            ],
        )
    return engine


def add_predictions(
    engine: sa.Engine,
    start_id: int,
    times: list[datetime],
    *,
    score: float | list[float] = 0.9,
    amount_scale: float = 1.0,
    seed: int = 2,
    countries: list[str] | None = None,
) -> list[int]:
    rng = np.random.default_rng(seed + start_id)
    scores = score if isinstance(score, list) else [score] * len(times)
    rows: list[dict[str, Any]] = []
    for i, ts in enumerate(times):
        s = scores[i]
        rows.append(
            {
                "request_id": start_id + i,
                "predicted_at": naive(ts),
                "amount": float(rng.lognormal(3, 1)) * amount_scale,
                "country": (countries or ["DE", "FR", "NL"])[i % len(countries or [1, 2, 3])],
                "score": s,
                "decision": None if s != s else int(s >= 0.5),
            }
        )
    with engine.begin() as conn:
        conn.execute(predictions.insert(), rows)
    return [r["request_id"] for r in rows]


def add_labels(engine: sa.Engine, items: list[tuple[int, datetime, int]]) -> None:
    with engine.begin() as conn:
        conn.execute(
            labels.insert(),
            [{"request_id": i, "labeled_at": naive(ts), "is_fraud": y} for i, ts, y in items],
        )


def predictions_spec(
    features: list[str], where: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    """The `predictions:` block for the fraud table's columns, read from `where` (a `table` or
    a `query`; the `predictions` table above by default)."""
    return {
        **(where or {"table": "predictions"}),
        "id": "request_id",
        "timestamp": "predicted_at",
        "score": "score",
        "prediction": "decision",
        "features": features,
        **extra,
    }


def labels_spec(where: dict[str, str] | None = None) -> dict[str, Any]:
    """The `labels:` block for the fraud table's labels, read from `where` (the `labels` table
    above by default)."""
    return {
        **(where or {"table": "labels"}),
        "id": "request_id",
        "timestamp": "labeled_at",
        "label": "is_fraud",
    }


def one_model_config(source_url: str, model: dict[str, Any]) -> VigilConfig:
    """A config with `model` as model `m` on `source_url`, an in-memory store, one receiver."""
    return build_config(
        {
            "store": "sqlite://",
            "sources": {"src": {"url": source_url}},
            "models": {"m": model},
            "routing": {"default": ["chat"]},
            "receivers": {"chat": {"slack": {"channel": "#c"}}},
        }
    )


def config_dict(store_url: str, source_url: str, **model_overrides: Any) -> dict[str, Any]:
    model: dict[str, Any] = {
        "source": "src",
        "task": "binary_classification",
        "schedule": "5m",
        "bucket": "1h",
        "predictions": predictions_spec(["amount", "country"]),
        "labels": labels_spec(),
        "reference": {"table": "reference_rows"},
        "slos": [
            {
                "metric": "accuracy",
                "window": "24h",
                "objective": ">= 0.9",
                "severity": "page",
                "min_samples": 20,
                "resolve_after": 1,
            },
        ],
    }
    model.update(model_overrides)
    return {
        "store": store_url,
        "sources": {"src": {"url": source_url, "chunk_size": 100}},
        "models": {"m": model},
        "routing": {"default": ["chat"]},
        "receivers": {"chat": {"slack": {"channel": "#ml-oncall"}}},
    }


def build_config(data: dict[str, Any], env: dict[str, str] | None = None) -> VigilConfig:
    return parse_config(yaml.safe_dump(data, sort_keys=False), "test.yaml", env or {})


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def hourly(start: datetime, count: int, step: timedelta = timedelta(minutes=1)) -> list[datetime]:
    return [start + i * step for i in range(count)]


# -- alerts and notifications -------------------------------------------------------------------

ALERT_STARTED = datetime(2026, 11, 3, 14, 5, tzinfo=UTC)
ALERT_DEFAULTS: dict[str, Any] = {
    "model": "fraud-detector",
    "slo": "fraud-detector/accuracy/24h",
    "metric": "accuracy",
    "kind": "quality_drop",
    "severity": "page",
    "objective": ">= 0.9",
    "window": "24h",
    "value": 0.81,
    "n": 2500,
    "runbook_url": "https://runbooks.example/quality-drop.md",
    "started_at": ALERT_STARTED,
    "ci": (0.79, 0.83),
}


def build_alert(**changes: Any) -> Alert:
    """The alert every notifier test starts from, with `changes` applied.

    The parsed objective (threshold, direction) follows `objective` as the engine sets it,
    unless a test passes its own: a test alert looks exactly like one the engine builds.
    """
    fields = {**ALERT_DEFAULTS, **changes}
    if "threshold" not in changes:
        try:
            objective = parse_objective(str(fields["objective"]))
        except ValueError:
            pass
        else:
            fields["threshold"] = objective.threshold
            fields["higher_is_better"] = objective.higher_is_better
    return Alert(**fields)


def build_notification(
    *alerts: Alert,
    event: EventKind = "open",
    key: str = "g1:1:1:r",
    receiver: str = "r",
    group_key: str = "g1",
    thread_ref: str | None = None,
    sequence: int = 1,
    reason: str = "",
) -> Notification:
    """One message about `alerts` (worst first; one default alert when none are given)."""
    return Notification(
        key=key,
        receiver=receiver,
        group_key=group_key,
        event=event,
        alerts=alerts or (build_alert(),),
        thread_ref=thread_ref,
        sequence=sequence,
        reason=reason,
    )
