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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
import structlog

from monitor.config.models import ModelConfig
from monitor.core.durations import parse_duration
from monitor.core.reference import PREDICTION_COLUMN, SCORE_COLUMN
from monitor.store.tables import Incident

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from alerts.incidents import IncidentChange

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


class EvidenceSource(Protocol):
    """Where a drift report's rows come from: the model's source, seen only through these."""

    def window_frame(self, start: datetime, end: datetime, limit: int) -> pd.DataFrame: ...

    def reference_frame(self, limit: int = ...) -> pd.DataFrame: ...


@dataclass(frozen=True)
class EvidenceContext:
    """What rendering needs, handed in by the engine (alerts never open a source itself)."""

    model: ModelConfig
    source: EvidenceSource
    out_dir: Path
    redact: Callable[[str], str]


def drift_report(ctx: EvidenceContext, model_name: str, window: timedelta, now: datetime) -> str:
    """Render the report for a model's window ending `now`; returns its file URL."""
    current = ctx.source.window_frame(now - window, now, SAMPLE_ROWS)
    reference = ctx.source.reference_frame(limit=SAMPLE_ROWS)
    current = current.rename(columns=RENAMES)
    reference = reference.rename(columns=RENAMES)
    categorical = [*ctx.model.predictions.categorical, "prediction"]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", model_name).strip("-") or "model"
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = ctx.out_dir / ARTIFACTS / f"drift-{slug}-{window.total_seconds():.0f}s-{stamp}.html"
    render_drift_report(current, reference, out, categorical)
    return out.resolve().as_uri()


def drift_incidents_opened(
    session: Session, changes: Iterable[IncidentChange]
) -> dict[int, timedelta]:
    """The drift incidents a tick opened, with the window each report must cover."""
    wanted: dict[int, timedelta] = {}
    for change in changes:
        if change.event != "open":
            continue
        incident = session.get(Incident, change.incident_id)
        if incident is None or incident.kind not in DRIFT_KINDS:
            continue
        try:
            wanted[change.incident_id] = parse_duration(str(incident.alert.get("window", "")))
        except ValueError:
            continue
    return wanted


def render_reports(
    ctx: EvidenceContext, model_name: str, wanted: dict[int, timedelta], now: datetime
) -> dict[int, str]:
    """Render one report per window (incidents of a tick share it); never raises.

    Runs outside any store transaction: it reads the source and can take seconds.
    """
    rendered: dict[timedelta, str] = {}
    out: dict[int, str] = {}
    for incident_id, window in wanted.items():
        try:
            if window not in rendered:
                rendered[window] = drift_report(ctx, model_name, window, now)
            out[incident_id] = rendered[window]
        except Exception as exc:
            log.warning(
                "drift report not rendered",
                model=model_name,
                incident=incident_id,
                error=ctx.redact(f"{type(exc).__name__}: {exc}")[:500],
            )
    return out


def attach_reports(session: Session, reports: dict[int, str]) -> None:
    """Link each rendered report from its incident's alert, before its first message."""
    for incident_id, url in reports.items():
        incident = session.get(Incident, incident_id)
        if incident is None:
            continue
        alert: dict[str, Any] = dict(incident.alert)
        alert["report_url"] = url
        incident.alert = alert
