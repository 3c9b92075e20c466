"""Every alert kind Vigil can raise, and the runbook page that tells on-call what to do about it."""

from __future__ import annotations

from pathlib import Path

#: Alert kind -> runbook file in `runbooks/`. A test checks that every file exists.
RUNBOOKS: dict[str, str] = {
    "quality_drop": "quality-drop.md",
    "estimated_quality_drop": "estimated-quality-drop.md",
    "feature_drift": "feature-drift.md",
    "prediction_drift": "prediction-drift.md",
    "missing_values": "missing-values.md",
    "schema_change": "schema-change.md",
    "stale_predictions": "stale-predictions.md",
    "stale_labels": "stale-labels.md",
    "volume_anomaly": "volume-anomaly.md",
    "monitoring_blind": "monitoring-blind.md",
    "error_budget_burn": "error-budget-burn.md",
}

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "runbooks"


def runbook_url(kind: str, base_url: str | None) -> str:
    """The link an alert carries; `base_url` points at the team's wiki or repository copy."""
    page = RUNBOOKS.get(kind, "README.md")
    if base_url:
        return base_url.rstrip("/") + "/" + page
    return (BUNDLED_DIR / page).as_uri()
