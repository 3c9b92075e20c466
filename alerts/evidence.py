"""Evidence for drift incidents: an Evidently data-drift report, linked from the alert.

When a drift incident opens, on-call's first question is "which features, and how?". Vigil's
own numbers come from histograms; the report shows the raw distributions side by side. It is
rendered on a bounded sample (the newest rows of the window and the first rows of the
reference, `SAMPLE_ROWS` each) so it costs seconds, not a rescan, into the runtime's
`artifacts/` folder, and its location becomes the alert's `report_url`.

Evidence is a nicety: nothing here may fail a tick. Evidently is imported only when a drift
incident opens (it is heavy, and an optional extra), with its telemetry switched off first.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import structlog

from monitor.durations import parse_duration
from monitor.reference import PREDICTION_COLUMN, SCORE_COLUMN
from monitor.store.tables import Incident

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from alerts.incidents import IncidentChange
    from monitor.runtime import Runtime

log = structlog.get_logger("vigil.evidence")

DRIFT_KINDS = frozenset({"feature_drift", "prediction_drift"})
SAMPLE_ROWS = 5000
ARTIFACTS = "artifacts"
#: Pseudo-features get readable names in the report.
RENAMES = {SCORE_COLUMN: "score", PREDICTION_COLUMN: "prediction"}


def render_drift_report(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    out: Path,
    categorical: Iterable[str] = (),
) -> Path:
    """Write Evidently's `DataDriftPreset` report of `current` against `reference` to `out`.

    Only columns both frames have are compared; text-valued columns and those named in
    `categorical` are treated as categories, the rest as numbers.
    """
    os.environ["DO_NOT_TRACK"] = "1"  # before evidently is imported: no telemetry, ever
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = [c for c in current.columns if c in reference.columns]
    if current.empty or reference.empty or not columns:
        raise ValueError("no rows or no common columns to compare")
    current, reference = current[columns].copy(), reference[columns].copy()
    forced = set(categorical)
    cats = [c for c in columns if c in forced or not pd.api.types.is_numeric_dtype(reference[c])]
    nums = [c for c in columns if c not in cats]
    for frame in (current, reference):
        for column in cats:
            frame[column] = frame[column].astype("string")
        for column in nums:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    definition = DataDefinition(numerical_columns=nums, categorical_columns=cats)
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(out))
    return out


def drift_report(rt: Runtime, model_name: str, window: timedelta, now: datetime) -> str:
    """Render the report for a model's window ending `now`; returns its file URL."""
    model = rt.config.models[model_name]
    source = rt.source_for(model_name)
    current = source.window_frame(now - window, now, SAMPLE_ROWS)
    reference = source.reference_frame(limit=SAMPLE_ROWS)
    current = current.rename(columns=RENAMES)
    reference = reference.rename(columns=RENAMES)
    categorical = [*model.predictions.categorical, "prediction"]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", model_name).strip("-") or "model"
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = rt.state_dir / ARTIFACTS / f"drift-{slug}-{window.total_seconds():.0f}s-{stamp}.html"
    render_drift_report(current, reference, out, categorical)
    return out.resolve().as_uri()


def attach_evidence(
    rt: Runtime,
    session: Session,
    model_name: str,
    changes: Iterable[IncidentChange],
    now: datetime,
) -> None:
    """Give every drift incident opened in this tick its report; never raises.

    Called in the tick's transaction before the outbox messages are written, so the first
    message already links the report. Incidents of one tick share a report per window.
    """
    rendered: dict[timedelta, str] = {}
    opened = [c.incident_id for c in changes if c.event == "open"]
    for incident_id in opened:
        try:
            incident = session.get(Incident, incident_id)
            if incident is None or incident.kind not in DRIFT_KINDS:
                continue
            window = parse_duration(str(incident.alert.get("window", "")))
            if window not in rendered:
                rendered[window] = drift_report(rt, model_name, window, now)
            alert: dict[str, Any] = dict(incident.alert)
            alert["report_url"] = rendered[window]
            incident.alert = alert
        except Exception as exc:
            log.warning(
                "drift report not rendered",
                model=model_name,
                incident=incident_id,
                error=rt.redact(f"{type(exc).__name__}: {exc}")[:500],
            )
